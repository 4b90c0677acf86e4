"""A storage plugin's answers are requests the host checks before any I/O: an `fs` target
rooted outside the data directory (for outputs or inputs), object keys that climb out or
are absurd, and an `s3` target the plugin was not granted are each refused — at submit
time with a 400, or at run time with a clear failure — no file outside the data
directory is written or read, and the server serves the next job."""

import shutil

import pytest

from conftest import ROOT, copra_with_plugins

HOSTILE = ROOT / "tests" / "plugins" / "dist" / "hostile-storage.wasm"


@pytest.fixture()
def hostile_copra(tmp_path):
    server = copra_with_plugins(tmp_path, ["storage-s3", "format-video", HOSTILE])
    yield server
    server.stop()


@pytest.fixture()
def outside(tmp_path):
    """A directory outside the server's data directory, holding a valid video: if the
    host ever read it as an input, the job would succeed."""
    d = tmp_path / "outside"
    d.mkdir()
    return d


def job(media_server, storage, path="out.mp4"):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": storage, "outputs": {"mp4:240p": {"path": path}}}


def refused(response, code):
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["status"], body["error_code"]) == ("error", code), body
    assert "hostile-storage" in body["message"], body
    return body["message"]


def files_in(directory):
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))


def serves_the_next_job(server, media_server):
    created = server.post_job(job(media_server, {"service": "local"}, "after.mp4"))
    assert created.status_code == 201, created.text
    assert server.wait_job(created.json()["id"])["status"] == "job.completed"


def test_fs_targets_are_refused_for_outputs_and_inputs(hostile_copra, media_server, media_dir, outside):
    for scheme in ("fs", "FS", "Fs"):
        r = hostile_copra.post_job(job(media_server, {"service": "fs-out", "root": str(outside), "scheme": scheme}))
        message = refused(r, "storage_not_valid")
        assert "never granted" in message and "[plugins.hostile-storage] schemes" in message, message
        assert "'local' target" in message, message

    shutil.copy(media_dir / "input.mp4", outside / "input.mp4")
    sneaky_input = {"input": {"service": "fs-in", "root": str(outside), "key": "input.mp4"},
                    "storage": {"service": "local"}, "outputs": {"mp4:240p": {"path": "stolen.mp4"}}}
    message = refused(hostile_copra.post_job(sneaky_input), "storage_not_valid")
    assert "'fs'" in message or '"fs"' in message, message

    # Nothing was written beside the sentinel, and nothing was made from it.
    assert files_in(outside) == ["input.mp4"]
    assert not list(hostile_copra.data_dir.rglob("stolen.mp4"))
    serves_the_next_job(hostile_copra, media_server)


def test_an_ungranted_s3_target_is_refused(hostile_copra, media_server, s3):
    prefix = "sneaky-never-written"
    storage = {"service": "s3-sneaky", "endpoint": s3["endpoint"], "bucket": s3["bucket"], "path": prefix}
    message = refused(hostile_copra.post_job(job(media_server, storage)), "storage_not_valid")
    assert '"s3"' in message and "[plugins.hostile-storage] schemes" in message, message
    listed = s3["client"].list_objects_v2(Bucket=s3["bucket"], Prefix=prefix)
    assert listed.get("KeyCount", 0) == 0


@pytest.mark.parametrize("key, why", [
    ("../../outside/out.mp4", "'..' segment"),
    ("a/../../../outside/out.mp4", "'..' segment"),
    ("./out.mp4", "'.' segment"),
    ("..\\..\\outside\\out.mp4", "backslash"),
    ("out.mp4\u0000.jpg", "U+0000"),
    ("out\nmp4", "U+000A"),
    ("C:/Windows/out.mp4", "drive letter"),
    ("/", "names no file"),
])
def test_climbing_output_keys_are_refused_at_submit(hostile_copra, media_server, outside, key, why):
    message = refused(hostile_copra.post_job(job(media_server, {"service": "climb", "key": key})), "storage_path_not_valid")
    assert why in message, message
    assert files_in(outside) == []


def test_an_absurd_key_is_refused_and_not_echoed(hostile_copra, media_server):
    r = hostile_copra.post_job(job(media_server, {"service": "longkey"}))
    message = refused(r, "storage_path_not_valid")
    assert "100002 bytes" in message and len(message) < 1000, message
    serves_the_next_job(hostile_copra, media_server)


def test_an_absolute_key_stays_inside_the_data_directory(hostile_copra, media_server, outside):
    key = f"{outside}/abs.mp4"
    created = hostile_copra.post_job(job(media_server, {"service": "climb", "key": key}))
    assert created.status_code == 201, created.text
    final = hostile_copra.wait_job(created.json()["id"])
    assert final["status"] == "job.completed", final
    assert files_in(outside) == [], "nothing written at the absolute path"
    written = list(hostile_copra.data_dir.rglob("abs.mp4"))
    assert len(written) == 1 and str(outside).lstrip("/") in written[0].as_posix(), written


@pytest.mark.parametrize("key, mention", [
    ("../../outside/input.mp4", "'..' segment"),
    ("files/../../outside/input.mp4", "'..' segment"),
    ("..\\..\\outside\\input.mp4", "backslash"),
])
def test_climbing_input_keys_are_refused_before_any_read(hostile_copra, media_server, media_dir, outside, key, mention):
    # The key would reach a valid video outside the data directory: reading it would
    # make the job succeed. The host checks the key the plugin answers at submit.
    shutil.copy(media_dir / "input.mp4", outside / "input.mp4")
    sneaky = {"input": {"service": "climb", "key": key}, "storage": {"service": "local"},
              "outputs": {"mp4:240p": {"path": "stolen.mp4"}}}
    message = refused(hostile_copra.post_job(sneaky), "storage_path_not_valid")
    assert "hostile-storage" in message and mention in message, message
    assert not list(hostile_copra.data_dir.rglob("stolen.mp4"))
    serves_the_next_job(hostile_copra, media_server)


def test_an_absolute_input_key_is_read_inside_the_data_directory_only(hostile_copra, media_server, media_dir, outside):
    shutil.copy(media_dir / "input.mp4", outside / "input.mp4")
    sneaky = {"input": {"service": "climb", "key": str(outside / "input.mp4")}, "storage": {"service": "local"},
              "outputs": {"mp4:240p": {"path": "stolen.mp4"}}}
    created = hostile_copra.post_job(sneaky)
    assert created.status_code == 201, created.text
    final = hostile_copra.wait_job(created.json()["id"])
    # Rooted in the data directory, the key names a file that does not exist there.
    assert final["status"] == "job.failed" and final["input"]["status"] == "input.failed", final
    assert not list(hostile_copra.data_dir.rglob("stolen.mp4"))


def test_granting_fs_stops_the_server_at_start(tmp_path):
    with pytest.raises(AssertionError) as exited:
        copra_with_plugins(tmp_path, ["storage-s3"], '[plugins.hostile-storage]\nschemes = ["fs"]\n', timeout=30)
    assert "copra exited" in str(exited.value)
    log = (tmp_path / "data" / "copra.log").read_text(errors="replace")
    assert "[plugins.hostile-storage] schemes" in log and "'fs' can never be granted" in log, log[:3000]
