"""Hostile plugins are contained: a loop, a memory bomb, a panic and a file read each fail
their own call with a clear code, granted environment reaches the plugin, and the server
goes on serving jobs."""

import pytest

from conftest import ROOT, copra_with_plugins

HOSTILE = ROOT / "tests" / "plugins" / "dist" / "hostile-condition.wasm"


@pytest.fixture()
def hostile_copra(tmp_path):
    config = '[plugins.hostile-condition]\ntime_ms = 300\nmemory_mib = 32\nenv = { COPRA_TEST_SECRET = "granted" }\n'
    server = copra_with_plugins(tmp_path, ["storage-s3", "format-video", HOSTILE], config)
    yield server
    server.stop()


def test_misbehaving_plugin_calls_fail_alone(hostile_copra, media_server):
    def out(misdeed):
        return {"key": misdeed, "path": f"{misdeed}.mp4", "if": misdeed}

    job = {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": {"service": "local"},
        "outputs": {"mp4:240p": [out(m) for m in ("loop", "bomb", "trap", "file", "big", "env", "true")]},
    }
    created = hostile_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = hostile_copra.wait_job(created.json()["id"], timeout=120)
    outputs = {o["key"]: o for o in final["outputs"]}

    assert outputs["loop"]["status"] == "video.failed"
    assert "plugin_timeout" in outputs["loop"]["error"] and "300 ms" in outputs["loop"]["error"]
    assert outputs["bomb"]["status"] == "video.failed"
    assert "plugin_memory_exceeded" in outputs["bomb"]["error"]
    assert outputs["trap"]["status"] == "video.failed"
    assert "plugin_failed" in outputs["trap"]["error"]
    assert "panicked on purpose" in outputs["trap"]["error"]
    assert outputs["file"]["status"] == "video.failed"
    assert "cannot open a file" in outputs["file"]["error"]
    # An 8 MiB error message is cut down before it reaches the API.
    assert outputs["big"]["status"] == "video.failed"
    assert 100 < len(outputs["big"]["error"]) < 4096
    # Granted environment is visible; the outputs not sabotaged are produced.
    assert outputs["env"]["status"] == "video.encoded", outputs["env"]
    assert outputs["true"]["status"] == "video.encoded"
    assert final["status"] == "job.failed"

    # The server keeps serving jobs afterwards.
    again = hostile_copra.post_job({
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": {"service": "local"},
        "outputs": {"mp4:240p": {"path": "after.mp4", "if": "true"}},
    })
    assert again.status_code == 201
    assert hostile_copra.wait_job(again.json()["id"])["status"] == "job.completed"
