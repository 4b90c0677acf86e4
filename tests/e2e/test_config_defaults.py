"""The Configuration table's defaults, observed from outside the real binary: what is
generated when unset (API key, admin key, worker id, sealing and webhook secrets) and kept
across restarts, `COPRA_PUBLIC_URL`, the TOML file (`--config` and `COPRA_CONFIG`) under
the environment, the default data and plugin directories, and the compiled-plugin cache
being reused on a warm start, and the worker's concurrency."""

import shutil
import time
from pathlib import Path

import pytest
import requests

from conftest import PLUGIN_DIR, Copra, free_port, wait_until

GENERATED = ["api-key", "admin-key", "worker-id", "secret-key", "webhook-secret"]
UNSET = ["COPRA_API_KEYS", "COPRA_ADMIN_KEY", "COPRA_WORKER_ID", "COPRA_SECRET_KEY", "COPRA_WEBHOOK_SECRET",
         "COPRA_PUBLIC_URL", "COPRA_CONFIG", "COPRA_PLUGIN_DIR", "COPRA_DATA_DIR", "COPRA_DATABASE_URL", "COPRA_LISTEN"]


def bare(data_dir: Path, cwd=None, **env) -> Copra:
    """A server given only a listen address (and `env`): every other setting at its default."""
    server = Copra(data_dir)
    for name in UNSET:
        server.env.pop(name, None)
    server.env["COPRA_LISTEN"] = f"127.0.0.1:{server.port}"
    server.env.update(env)
    if cwd is not None:
        server.cwd = cwd
    return server


def local_job(media_server, path):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local", "path": path},
            "outputs": {"jpg:80x": {"path": "/t.jpg"}}}


def status(server, key, path="/v2/jobs/nope"):
    return requests.get(f"{server.url}{path}", auth=(key, ""), timeout=5).status_code


def test_generated_keys_and_ids_work_and_survive_a_restart(tmp_path):
    data = tmp_path / "data"
    server = bare(data, COPRA_DATA_DIR=str(data), COPRA_PLUGIN_DIR=str(PLUGIN_DIR)).start()
    try:
        values = {name: (data / name).read_text().strip() for name in GENERATED}
        assert all(values.values()), values
        assert values["webhook-secret"].startswith("whsec_"), "a Standard Webhooks secret"
        assert (data / "secret-key").stat().st_mode & 0o077 == 0, "the sealing key is readable by its owner only"
        key, admin = values["api-key"], values["admin-key"]
        assert status(server, key) == 404
        assert status(server, "wrong") == 401
        assert status(server, admin, "/admin/plugins") == 200
        assert status(server, key, "/admin/plugins") == 401
        wait_until(lambda: f"worker={values['worker-id']}" in server.logs(), 10, "the worker to claim under its generated id")
    finally:
        server.stop()
    server = bare(data, COPRA_DATA_DIR=str(data), COPRA_PLUGIN_DIR=str(PLUGIN_DIR)).start()
    try:
        assert {name: (data / name).read_text().strip() for name in GENERATED} == values, "nothing regenerated"
        assert status(server, values["api-key"]) == 404
    finally:
        server.stop()


def test_public_url_is_the_base_of_local_file_urls(tmp_path, media_server):
    public = "https://media.example.test/copra"
    for name, env in (("default", {}), ("public", {"COPRA_PUBLIC_URL": public})):
        server = bare(tmp_path / name, COPRA_DATA_DIR=str(tmp_path / name), COPRA_PLUGIN_DIR=str(PLUGIN_DIR),
                      COPRA_API_KEYS="k1", COPRA_OUTBOUND_ALLOW="127.0.0.0/8", **env).start()
        try:
            r = server.post_job(local_job(media_server, f"/{name}"), key="k1")
            assert r.status_code == 201, r.text
            job = server.wait_job(r.json()["id"], key="k1", timeout=60)
            assert job["status"] == "job.completed", job
            (url,) = job["outputs"][0]["urls"] if "urls" in job["outputs"][0] else [job["outputs"][0]["url"]]
            base = public if env else server.url
            assert url.startswith(f"{base}/files/") and url.endswith(f"/{name}/t.jpg"), (base, url)
        finally:
            server.stop()


def test_config_file_under_the_environment(tmp_path):
    """Keys of the TOML file apply (by `--config` or `COPRA_CONFIG`); an environment
    variable wins over the same key in the file."""
    port = free_port()
    config = tmp_path / "copra.toml"
    config.write_text(
        f'listen = "127.0.0.1:{port}"\n'
        f'data_dir = "{tmp_path / "from-file"}"\n'
        f'plugin_dir = "{PLUGIN_DIR}"\n'
        'api_keys = ["file-key"]\n'
        'admin_key = "file-admin"\n'
        'worker_id = "file-worker"\n')
    server = bare(tmp_path / "unused", COPRA_CONFIG=str(config))
    server.env.pop("COPRA_LISTEN")
    server.port, server.url = port, f"http://127.0.0.1:{port}"
    server.log_path = tmp_path / "file.log"
    server.start()
    try:
        assert (tmp_path / "from-file" / "copra.db").exists(), "data_dir from the file"
        assert status(server, "file-key") == 404 and status(server, "file-admin", "/admin/plugins") == 200
        wait_until(lambda: "worker=file-worker" in server.logs(), 10, "the worker id from the file")
    finally:
        server.stop()
    # The same file given with --config, and the environment over it.
    server = bare(tmp_path / "unused", COPRA_API_KEYS="env-key")
    server.env.pop("COPRA_LISTEN")
    server.port, server.url = port, f"http://127.0.0.1:{port}"
    server.log_path = tmp_path / "flag.log"
    server.args = ["--config", str(config)]
    server.start()
    try:
        assert status(server, "env-key") == 404
        assert status(server, "file-key") == 401, "COPRA_API_KEYS replaces the file's api_keys"
        assert status(server, "file-admin", "/admin/plugins") == 200
    finally:
        server.stop()


def test_default_data_and_plugin_directories(tmp_path):
    """Without COPRA_DATA_DIR and COPRA_PLUGIN_DIR: `./data`, and `plugins/dist` when the
    working directory has it, else `./data/plugins`."""
    bare_dir = tmp_path / "installed"
    (bare_dir / "data" / "plugins").mkdir(parents=True)
    shutil.copy(PLUGIN_DIR / "storage-s3.wasm", bare_dir / "data" / "plugins")
    server = bare(bare_dir / "data", cwd=bare_dir, COPRA_API_KEYS="k1", COPRA_ADMIN_KEY="a1").start()
    try:
        assert (bare_dir / "data" / "copra.db").exists()
        names = [p["name"] for p in requests.get(f"{server.url}/admin/plugins", auth=("a1", ""), timeout=5).json()["plugins"]]
        assert names == ["storage-s3"], names
    finally:
        server.stop()
    checkout = tmp_path / "checkout"
    (checkout / "plugins" / "dist").mkdir(parents=True)
    (checkout / "data" / "plugins").mkdir(parents=True)
    shutil.copy(PLUGIN_DIR / "condition-expr.wasm", checkout / "plugins" / "dist")
    shutil.copy(PLUGIN_DIR / "storage-s3.wasm", checkout / "data" / "plugins")
    server = bare(checkout / "data", cwd=checkout, COPRA_API_KEYS="k1", COPRA_ADMIN_KEY="a1").start()
    try:
        names = [p["name"] for p in requests.get(f"{server.url}/admin/plugins", auth=("a1", ""), timeout=5).json()["plugins"]]
        assert names == ["condition-expr"], names
    finally:
        server.stop()


def test_compiled_plugins_are_reused_on_a_warm_start(tmp_path):
    data = tmp_path / "data"
    env = dict(COPRA_DATA_DIR=str(data), COPRA_PLUGIN_DIR=str(PLUGIN_DIR), COPRA_API_KEYS="k1")
    bare(data, **env).start().stop()
    cache = data / "cache" / "plugins"
    first = {p.name: p.stat().st_ino for p in cache.glob("*.cwasm")}
    assert len(first) == len(list(PLUGIN_DIR.glob("*.wasm"))), (first, list(PLUGIN_DIR.glob("*.wasm")))
    bare(data, **env).start().stop()
    second = {p.name: p.stat().st_ino for p in cache.glob("*.cwasm")}
    # A recompile writes a new file and renames it over the old one: a new inode.
    assert second == first, "every compiled plugin was read back, none written again"


def running(view) -> bool:
    """Claimed by a worker and not finished: its input left its first status."""
    return view["status"] == "job.starting" and view["input"]["status"] != "input.starting"


@pytest.mark.parametrize("concurrency", [None, "2"])
def test_worker_concurrency(tmp_path, media_server, concurrency):
    """One job at a time by default; `COPRA_WORKER_CONCURRENCY=2` runs two side by side."""
    env = {"COPRA_WORKER_CONCURRENCY": concurrency} if concurrency else {}
    server = Copra(tmp_path / "data", env).start()
    try:
        ids = []
        for i in range(2):
            r = server.post_job({"input": {"url": f"{media_server}/long.mp4"}, "storage": {"service": "local"},
                                 "outputs": {"mp4:360p": {"path": f"c{i}.mp4"}}})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        most = 0
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            views = [server.get_job(i).json() for i in ids]
            most = max(most, sum(running(v) for v in views))
            if all(v["status"] in ("job.completed", "job.failed") for v in views):
                break
            time.sleep(0.05)
        assert all(v["status"] == "job.completed" for v in views), views
        assert most == (2 if concurrency else 1), most
    finally:
        server.stop()
