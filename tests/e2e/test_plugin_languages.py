"""Condition plugins written in JavaScript (componentize-js) and in Python
(componentize-py), built from `examples/plugins/`, are loaded and called by the host like
any other component: each one's condition language decides which outputs run, and its
check at submit time turns a bad expression into a 400."""

import subprocess
from dataclasses import dataclass

import pytest

from conftest import ROOT, copra_with_plugins


@dataclass
class Language:
    name: str
    # Outputs by key, each with its condition and whether it runs on a 1280x720 h264
    # input with sound (5 s).
    conditions: dict
    # Bad conditions, each with a word its 400 must mention.
    refused: list


LANGUAGES = [
    Language("js", {"wide": ("landscape and hd", True), "tall": ("portrait", False), "sound": ("has_audio and short", True)},
             [("landscape and sparkly", "sparkly")]),
    Language("python", {"wide": ("input.width >= 1280 and input.height == 720", True),
                        "tall": ("input.height > input.width", False),
                        "named": ("input.video_codec == 'h264' and not input.duration > 60", True)},
             [("input.width >=", "syntax"), ("__import__('os')", "not allowed"), ("input.colour == 1", "colour")]),
]


@pytest.fixture(scope="module", params=LANGUAGES, ids=lambda language: language.name)
def language(request, tmp_path_factory):
    language = request.param
    name = f"{language.name}-condition"
    out = tmp_path_factory.mktemp(language.name) / f"{name}.wasm"
    subprocess.run([str(ROOT / "examples" / "plugins" / name / "build.sh"), str(out)], check=True)
    return language, name, out


@pytest.fixture()
def server(tmp_path, language):
    _, name, wasm = language
    # A JavaScript engine or CPython in WebAssembly needs more than the default 64 MiB
    # and a longer first call.
    config = f"[plugins.{name}]\nmemory_mib = 256\ntime_ms = 5000\n"
    server = copra_with_plugins(tmp_path, ["storage-s3", "format-video", wasm], config, timeout=300)
    yield server
    server.stop()


def test_a_condition_plugin_decides_which_outputs_run(server, language, media_server):
    language, _, _ = language
    outputs = [{"key": key, "path": f"{key}.mp4", "if": condition} for key, (condition, _) in language.conditions.items()]
    job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"}, "outputs": {"mp4:240p": outputs}}
    created = server.post_job(job)
    assert created.status_code == 201, created.text
    final = server.wait_job(created.json()["id"])
    statuses = {o["key"]: o["status"] for o in final["outputs"]}
    expected = {key: "video.encoded" if runs else "video.skipped" for key, (_, runs) in language.conditions.items()}
    assert statuses == expected, final

    for bad, mention in language.refused:
        job["outputs"] = {"mp4:240p": {"path": "x.mp4", "if": bad}}
        r = server.post_job(job)
        assert r.status_code == 400 and r.json()["error_code"] == "condition_not_valid", r.text
        assert mention in r.json()["message"], r.json()["message"]
