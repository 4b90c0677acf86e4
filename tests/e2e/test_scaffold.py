"""A plugin author's path from nothing: `copra plugins new` for each kind, build each
crate for wasm32-wasip2 with cargo, and run a job on a server whose plugins are exactly
those four. If a template stops matching the SDK or the WIT, this is where it shows."""

import os
import subprocess
import uuid

import pytest

from conftest import COPRA_BIN, ROOT, copra_with_plugins, ffprobe

KINDS = ["storage", "format", "condition", "notifier"]


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    """The four components, built from freshly scaffolded crates."""
    work = tmp_path_factory.mktemp("scaffold")
    # One target directory for the four crates, kept under the repo's own so that the
    # SDK's dependencies are built once across runs.
    env = dict(os.environ, CARGO_TARGET_DIR=str(ROOT / "target" / "scaffold"))
    built = {}
    for kind in KINDS:
        name = f"my-{kind}"
        subprocess.run([str(COPRA_BIN), "plugins", "new", "--kind", kind, name, "--sdk", str(ROOT / "sdk")],
                       cwd=work, check=True, capture_output=True)
        assert (work / name / "src" / "lib.rs").is_file()
        subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip2"],
                       cwd=work / name, env=env, check=True)
        built[kind] = ROOT / "target" / "scaffold" / "wasm32-wasip2" / "release" / f"my_{kind}.wasm"
        assert built[kind].is_file()
    # Named by file stem as the host names plugins.
    plugins = work / "components"
    plugins.mkdir()
    for kind, wasm in built.items():
        (plugins / f"my-{kind}.wasm").write_bytes(wasm.read_bytes())
    return sorted(plugins.glob("*.wasm"))


def test_scaffolded_plugins_run_a_job(tmp_path, scaffolded, media_server, webhooks):
    server = copra_with_plugins(tmp_path, scaffolded)
    try:
        root = tmp_path / "bucket"
        root.mkdir()
        hook = f"/scaffold-{uuid.uuid4().hex[:8]}"
        job = {
            "input": {"url": f"{media_server}/input.mp4"},
            "storage": {"service": "my-storage", "root": str(root)},
            "notification": {"type": "my-notifier", "url": webhooks.url + hook},
            "outputs": {"my-format": [
                {"key": "hd", "path": "hd.mp4", "if": "hd"},
                {"key": "sd", "path": "sd.mp4", "if": "sd"},
            ]},
        }
        created = server.post_job(job)
        assert created.status_code == 201, created.text
        final = server.wait_job(created.json()["id"])
        assert final["status"] == "job.completed", final
        statuses = {o["key"]: o["status"] for o in final["outputs"]}
        assert statuses == {"hd": "video.encoded", "sd": "video.skipped"}, final

        # The storage plugin's opendal target put the file below its root.
        video = next(s for s in ffprobe(root / "hd.mp4")["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1280, 720)
        assert not (root / "sd.mp4").exists()

        # The notifier plugin posted the event itself, through the host's granted wasi:http.
        assert webhooks.wait_for(hook, "job.completed")["job_id"] == final["id"]

        # What the templates refuse is refused at submit time, in the API's error shape.
        bad_condition = dict(job, outputs={"my-format": {"path": "x.mp4", "if": "huge"}})
        r = server.post_job(bad_condition)
        assert (r.status_code, r.json()["error_code"]) == (400, "condition_not_valid"), r.text
        bad_param = dict(job, outputs={"my-format": {"path": "x.mp4", "number": 3}})
        r = server.post_job(bad_param)
        assert (r.status_code, r.json()["error_code"]) == (400, "output_param_not_valid"), r.text
        assert "number" in r.json()["message"]
        no_root = dict(job, storage={"service": "my-storage"})
        r = server.post_job(no_root)
        assert (r.status_code, r.json()["error_code"]) == (400, "storage_not_valid"), r.text
    finally:
        server.stop()
