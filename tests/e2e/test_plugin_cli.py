"""`copra plugins list|add|remove` against a running server, plugin `priority` deciding
who serves a service two plugins claim, and a bad upload leaving the previous version
active (the Plugins section's claims, through the command line an operator uses)."""

import os
import subprocess

from conftest import ADMIN_KEY, COPRA_BIN, PLUGIN_DIR, copra_with_plugins, s3_storage


def cli(server, *args, cwd):
    env = dict(os.environ, COPRA_ADMIN_KEY=ADMIN_KEY, COPRA_DATA_DIR=str(cwd / "cli-data"))
    env.pop("COPRA_CONFIG", None)
    return subprocess.run([str(COPRA_BIN), "plugins", "--server", server.url, *args],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def run_s3_job(server, media_server, s3, path):
    created = server.post_job({"input": {"url": f"{media_server}/input.mp4"}, "storage": s3_storage(s3, path=path),
                               "outputs": {"jpg:80x": {"path": "/t.jpg"}}})
    assert created.status_code == 201, created.text
    final = server.wait_job(created.json()["id"], timeout=60)
    assert final["status"] == "job.completed", final


def test_plugins_cli_priority_and_a_bad_upload(tmp_path, media_server, s3):
    config = '[plugins.copy-s3]\nschemes = ["s3"]\npriority = 5\n[plugins.rival-s3]\nschemes = ["s3"]\n'
    server = copra_with_plugins(tmp_path, ["storage-s3", "format-video"], config=config)
    work = tmp_path / "cli"
    work.mkdir()
    try:
        listed = cli(server, "list", cwd=work)
        assert listed.returncode == 0, listed.stderr
        rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:] if line.strip()}
        assert {"storage-s3", "format-video"} <= set(rows), listed.stdout
        assert rows["storage-s3"][2] == "storage", rows["storage-s3"]

        added = cli(server, "add", str(PLUGIN_DIR / "condition-expr.wasm"), cwd=work)
        assert added.returncode == 0, added.stderr
        plugins = server.plugins()
        assert plugins["condition-expr"]["kind"] == "condition"

        # Not a component: refused with the reason, and the previous storage-s3 serves on.
        before = server.plugins()["storage-s3"]["sha256"]
        garbage = work / "broken.wasm"
        garbage.write_bytes(b"\0asm not really")
        bad = cli(server, "add", str(garbage), "--name", "storage-s3", cwd=work)
        assert bad.returncode != 0 and bad.stderr.strip(), (bad.stdout, bad.stderr)
        assert server.plugins()["storage-s3"]["sha256"] == before
        run_s3_job(server, media_server, s3, "/cli-after-bad")

        # A second plugin claiming `s3` at the same priority is refused; storage-s3 keeps it.
        rival = cli(server, "add", str(PLUGIN_DIR / "storage-s3.wasm"), "--name", "rival-s3", cwd=work)
        listed = server.plugin_listing()
        plugins, errors = {p["name"]: p for p in listed["plugins"]}, listed["load_errors"]
        assert "rival-s3" not in plugins, plugins.keys()
        assert rival.returncode != 0 or any("rival-s3" in e["file"] for e in errors), (rival.stderr, errors)
        cli(server, "remove", "rival-s3", cwd=work)

        # With a higher priority, the copy takes the service over: its calls rise, the
        # original's do not.
        copy = cli(server, "add", str(PLUGIN_DIR / "storage-s3.wasm"), "--name", "copy-s3", cwd=work)
        assert copy.returncode == 0, copy.stderr
        calls = {name: p["calls"] for name, p in server.plugins().items()}
        run_s3_job(server, media_server, s3, "/cli-priority")
        after = {name: p["calls"] for name, p in server.plugins().items()}
        assert after["copy-s3"] > calls.get("copy-s3", 0), (calls, after)
        assert after.get("storage-s3", 0) == calls.get("storage-s3", 0), (calls, after)

        removed = cli(server, "remove", "copy-s3", cwd=work)
        assert removed.returncode == 0, removed.stderr
        plugins = server.plugins()
        assert "copy-s3" not in plugins
        run_s3_job(server, media_server, s3, "/cli-after-remove")
    finally:
        server.stop()
