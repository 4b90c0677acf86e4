"""A plugin author's path from nothing: `copra plugins new` for each kind, build each
crate for wasm32-wasip2 with cargo, and run a job on a server whose plugins are exactly
those four. If a template stops matching the SDK or the WIT, this is where it shows."""

import os
import subprocess
import uuid

import pytest

from conftest import COPRA_BIN, ROOT, copra_with_plugins, ffprobe, s3_storage

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
        made = subprocess.run([str(COPRA_BIN), "plugins", "new", "--kind", kind, name, "--sdk", str(ROOT / "sdk")],
                              cwd=work, check=True, capture_output=True, text=True)
        assert f"copra plugins test target/wasm32-wasip2/release/my_{kind}.wasm" in made.stdout, made.stdout
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


# What the templates say their plugins need: the storage template answers `s3` targets,
# the notifier posts to the (loopback) webhook receiver.
GRANTS = '[plugins.my-storage]\nschemes = ["s3"]\n[plugins.my-notifier]\nallowed_hosts = ["127.0.0.1:*"]\n'


def test_scaffolded_plugins_run_a_job(tmp_path, scaffolded, media_server, webhooks, s3):
    server = copra_with_plugins(tmp_path, scaffolded, GRANTS)
    try:
        prefix = f"scaffold-{uuid.uuid4().hex[:8]}"
        hook = f"/{prefix}"
        job = {
            "input": {"url": f"{media_server}/input.mp4"},
            "storage": dict(s3_storage(s3, f"/{prefix}"), service="my-storage"),
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

        # The storage plugin's s3 target put the file below its prefix in the bucket.
        outputs = {o["key"]: o for o in final["outputs"]}
        assert outputs["hd"]["url"] == f"{s3['endpoint']}/{s3['bucket']}/{prefix}/hd.mp4", outputs["hd"]
        stored = tmp_path / "hd.mp4"
        s3["client"].download_file(s3["bucket"], f"{prefix}/hd.mp4", str(stored))
        video = next(s for s in ffprobe(stored)["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1280, 720)
        listed = s3["client"].list_objects_v2(Bucket=s3["bucket"], Prefix=prefix)
        assert [o["Key"] for o in listed["Contents"]] == [f"{prefix}/hd.mp4"]

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
        no_bucket = dict(job, storage={"service": "my-storage"})
        r = server.post_job(no_bucket)
        assert (r.status_code, r.json()["error_code"]) == (400, "storage_not_valid"), r.text
        assert "bucket" in r.json()["message"]
        no_credentials = dict(job, storage={"service": "my-storage", "bucket": s3["bucket"]})
        r = server.post_job(no_credentials)
        assert (r.status_code, r.json()["error_code"]) == (400, "storage_credentials_not_valid"), r.text
    finally:
        server.stop()


def test_scaffolded_plugins_pass_the_conformance_kit(scaffolded):
    for wasm in scaffolded:
        # The condition template's language is two words, `hd` and `sd`.
        sample = ["--sample", "hd"] if wasm.stem == "my-condition" else []
        done = subprocess.run([str(COPRA_BIN), "plugins", "test", str(wasm), *sample], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (wasm.name, done.stdout, done.stderr)
