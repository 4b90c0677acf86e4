"""A plugin written in JavaScript (componentize-js) is loaded and called by the host like
any other component."""

import subprocess

import pytest

from conftest import ROOT, copra_with_plugins

EXAMPLE = ROOT / "examples" / "plugins" / "js-condition"


@pytest.fixture(scope="module")
def js_plugin(tmp_path_factory):
    out = tmp_path_factory.mktemp("js") / "js-condition.wasm"
    subprocess.run([str(EXAMPLE / "build.sh"), str(out)], check=True)
    return out


@pytest.fixture()
def js_copra(tmp_path, js_plugin):
    # A JavaScript engine in WebAssembly needs more than the default 64 MiB.
    config = "[plugins.js-condition]\nmemory_mib = 256\ntime_ms = 5000\n"
    server = copra_with_plugins(tmp_path, ["storage-s3", "format-video", js_plugin], config, timeout=300)
    yield server
    server.stop()


def test_js_condition_plugin(js_copra, media_server):
    def out(key, condition):
        return {"key": key, "path": f"{key}.mp4", "if": condition}

    job = {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": {"service": "local"},
        "outputs": {"mp4:240p": [out("wide", "landscape and hd"), out("tall", "portrait"), out("sound", "has_audio and short")]},
    }
    created = js_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = js_copra.wait_job(created.json()["id"])
    statuses = {o["key"]: o["status"] for o in final["outputs"]}
    assert statuses == {"wide": "video.encoded", "tall": "video.skipped", "sound": "video.encoded"}, final

    job["outputs"] = {"mp4:240p": {"path": "x.mp4", "if": "landscape and sparkly"}}
    r = js_copra.post_job(job)
    assert r.status_code == 400 and r.json()["error_code"] == "condition_not_valid", r.text
    assert "sparkly" in r.json()["message"]
