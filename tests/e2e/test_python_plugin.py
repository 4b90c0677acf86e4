"""A plugin written in Python (componentize-py) is loaded and called by the host like
any other component: its condition language decides which outputs run."""

import subprocess

import pytest

from conftest import ROOT, copra_with_plugins

EXAMPLE = ROOT / "examples" / "plugins" / "python-condition"


@pytest.fixture(scope="module")
def python_plugin(tmp_path_factory):
    out = tmp_path_factory.mktemp("py") / "python-condition.wasm"
    subprocess.run([str(EXAMPLE / "build.sh"), str(out)], check=True)
    return out


@pytest.fixture()
def py_copra(tmp_path, python_plugin):
    # CPython in WebAssembly needs more than the default 64 MiB and a longer first call.
    config = "[plugins.python-condition]\nmemory_mib = 256\ntime_ms = 5000\n"
    server = copra_with_plugins(tmp_path, ["storage-s3", "format-video", python_plugin], config, timeout=300)
    yield server
    server.stop()


def test_python_condition_plugin(py_copra, media_server):
    def out(path, condition):
        return {"key": path, "path": f"{path}.mp4", "if": condition}

    job = {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": {"service": "local"},
        "outputs": {"mp4:240p": [
            out("wide", "input.width >= 1280 and input.height == 720"),
            out("tall", "input.height > input.width"),
            out("named", "input.video_codec == 'h264' and not input.duration > 60"),
        ]},
    }
    created = py_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = py_copra.wait_job(created.json()["id"])
    statuses = {o["key"]: o["status"] for o in final["outputs"]}
    assert statuses == {"wide": "video.encoded", "tall": "video.skipped", "named": "video.encoded"}, final

    # The Python plugin's check runs at submit time: bad syntax and names are a 400.
    for bad, mention in [("input.width >=", "syntax"), ("__import__('os')", "not allowed"), ("input.colour == 1", "colour")]:
        job["outputs"] = {"mp4:240p": {"path": "x.mp4", "if": bad}}
        r = py_copra.post_job(job)
        assert r.status_code == 400 and r.json()["error_code"] == "condition_not_valid", r.text
        assert mention in r.json()["message"], r.json()["message"]
