"""Ladders planned from the content: `httpstream` with `"variants": "auto"`.

The format plugin asks for probe encodes of samples at candidate sizes and settings, the
host measures them, and the plugin keeps the rungs on the quality/bit-rate hull. Checked
from outside, on a simple and a complex 720p clip, against the fixed default ladder of
the same package:

- on the simple clip the package is at most 60 % of the default ladder's bytes, and its
  top rung still scores VMAF 93 or more (measured by the independent libvmaf);
- on the complex clip the top rung scores VMAF 90 or more;
- both manifests are valid (HLS by `m3u8`, with BANDWIDTH the measured peak; the MPD by
  its schema's elements) and list exactly the planned rungs;
- the metadata holds each rung's setting, ceiling and measured VMAF and bit rate, and
  every probe;
- explicit rungs with their own `vmaf=` each land within 1.5 of it."""

import json
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from conftest import KEY_A
from test_httpstream import MPD_NS, bucket_text, check_bandwidths, load_hls, run_package
from test_quality import vmaf_ffmpeg

SIZE = (1280, 720)
FPS = 25
DURATION = 6
PACKAGE = {"hls": {"path": "/hls"}, "dash": {"path": "/dash"}}


@pytest.fixture(scope="module")
def clips(media_dir, media_server):
    """Two 6-second 1280x720 clips, near-losslessly encoded: a simple one (testsrc:
    flat bars and a counter) and a complex one (testsrc2 under moving grain)."""
    d = media_dir / "ladder"
    d.mkdir(exist_ok=True)
    w, h = SIZE
    sources = {"simple": f"testsrc=size={w}x{h}:rate={FPS}:duration={DURATION}",
               "complex": f"testsrc2=size={w}x{h}:rate={FPS}:duration={DURATION},noise=alls=12:allf=t+u"}
    for name, graph in sources.items():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", graph,
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "6", "-pix_fmt", "yuv420p", str(d / f"{name}.mp4")],
                       check=True)
    return {name: (d / f"{name}.mp4", f"{media_server}/ladder/{name}.mp4") for name in sources}


def independent_vmaf(distorted: Path, source: Path, tmp: Path) -> float:
    """libvmaf as the `ffmpeg` command runs it: the rung scaled to the source's size with
    bicubic, both 8-bit 4:2:0."""
    log = tmp / f"{distorted.stem}-{uuid.uuid4().hex[:6]}.json"
    w, h = SIZE
    graph = (f"[0:v]scale={w}:{h}:flags=bicubic,format=yuv420p[d];[1:v]format=yuv420p[r];"
             f"[d][r]libvmaf=log_fmt=json:log_path={log}:n_threads=2")
    subprocess.run([str(vmaf_ffmpeg()), "-v", "error", "-nostdin", "-i", str(distorted), "-i", str(source),
                    "-lavfi", graph, "-f", "null", "-"], check=True, capture_output=True, timeout=300)
    return json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"]


def rung_as_mp4(pkg, name: str, tmp: Path) -> Path:
    """A rung's HLS segments, joined in its playlist's order and remuxed (no re-encode)
    into MP4: the static `ffmpeg` cannot read MPEG-TS."""
    playlist = pkg.path("hls", name, "index.m3u8").read_text()
    segments = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    joined = tmp / f"{pkg.prefix}-{name}.ts"
    joined.write_bytes(b"".join(pkg.path("hls", name, s).read_bytes() for s in segments))
    mp4 = tmp / f"{pkg.prefix}-{name}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(joined), "-c", "copy", "-an", str(mp4)], check=True)
    return mp4


def package_bytes(pkg) -> int:
    return sum(pkg.path(k[len(pkg.prefix) + 1:]).stat().st_size for k in pkg.keys if k.startswith(pkg.key("hls") + "/"))


def ladder_of(server, pkg) -> dict:
    r = requests.get(f"{server.url}/v2/metadata/jobs/{pkg.final['id']}/httpstream", auth=(KEY_A, ""), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["quality"]["ladder"]


def check_manifests(pkg, ladder: dict):
    """HLS: one variant per planned rung, BANDWIDTH the measured peak. DASH: one video
    Representation per rung, each with its size and a bandwidth."""
    hls = load_hls(pkg)
    names = [r["name"] for r in ladder["rungs"]]
    assert [p.uri.split("/")[0] for p in hls.master.playlists] == names, (hls.master.dumps(), names)
    check_bandwidths(pkg, hls)
    mpd = ET.fromstring(bucket_text(pkg.s3, pkg.key("dash", "master.mpd")))
    assert mpd.tag == "{urn:mpeg:dash:schema:mpd:2011}MPD"
    reps = [rep for aset in mpd.find("mpd:Period", MPD_NS).findall("mpd:AdaptationSet", MPD_NS)
            for rep in aset.findall("mpd:Representation", MPD_NS) if rep.get("width")]
    assert sorted((int(r.get("width")), int(r.get("height"))) for r in reps) == \
        sorted((r["width"], r["height"]) for r in ladder["rungs"]), [r.attrib for r in reps]
    assert all(int(r.get("bandwidth")) > 0 for r in reps)


def check_report(ladder: dict):
    """Each rung with its setting, ceiling and measured figures; rungs going down in bit
    rate; every probe reported."""
    assert ladder["vmaf"] == 95 and ladder["samples"] >= 1 and ladder["probes"], ladder
    assert all(set(p) == {"width", "height", "crf", "vmaf", "bitrate_kbps"} for p in ladder["probes"]), ladder
    rungs = ladder["rungs"]
    assert 1 <= len(rungs) <= 6, rungs
    for rung in rungs:
        assert rung["crf"] is not None and rung["maxrate_kbps"] > 0, rung
        assert rung["vmaf"] is not None and rung["bitrate_kbps"] > 0, ("each kept rung was itself probed", rung)
    rates = [r["bitrate_kbps"] for r in rungs]
    assert rates == sorted(rates, reverse=True) and len(set(rates)) == len(rates), rungs


def test_a_simple_clip_gets_a_cheaper_ladder_that_still_looks_good(shared_copra, s3, clips, tmp_path):
    source, url = clips["simple"]
    fixed = run_package(shared_copra, s3, url, dict(PACKAGE), tmp_path, timeout=300)
    auto = run_package(shared_copra, s3, url, {**PACKAGE, "variants": "auto"}, tmp_path, timeout=300)
    ladder = ladder_of(shared_copra, auto)
    check_report(ladder)
    check_manifests(auto, ladder)
    top = ladder["rungs"][0]
    theirs = independent_vmaf(rung_as_mp4(auto, top["name"], tmp_path), source, tmp_path)
    saved = package_bytes(auto) / package_bytes(fixed)
    print("simple:", [(r["name"], r["crf"], r["vmaf"], r["bitrate_kbps"]) for r in ladder["rungs"]],
          f"top {theirs:.2f}, {saved:.0%} of the default ladder's bytes")
    assert theirs >= 93, (theirs, top)
    assert saved <= 0.60, (package_bytes(auto), package_bytes(fixed))


def test_a_complex_clip_keeps_its_top_rung_high(shared_copra, s3, clips, tmp_path):
    source, url = clips["complex"]
    auto = run_package(shared_copra, s3, url, {**PACKAGE, "variants": "auto"}, tmp_path, timeout=300)
    ladder = ladder_of(shared_copra, auto)
    check_report(ladder)
    check_manifests(auto, ladder)
    top = ladder["rungs"][0]
    theirs = independent_vmaf(rung_as_mp4(auto, top["name"], tmp_path), source, tmp_path)
    print("complex:", [(r["name"], r["crf"], r["vmaf"], r["bitrate_kbps"]) for r in ladder["rungs"]], f"top {theirs:.2f}")
    assert theirs >= 90, (theirs, top)


def test_rungs_with_their_own_target_land_on_it(shared_copra, s3, clips, tmp_path):
    """Explicit variants with `vmaf=` per rung: each such rung's setting is searched on
    the samples, and each lands within 1.5 of its own target as the independent libvmaf
    measures it; a rung without one keeps its setting."""
    source, url = clips["complex"]
    targets = {"720p": 93, "480p": 80}
    variants = [f"mp4:{name}::vmaf={vmaf}" for name, vmaf in targets.items()] + ["mp4:360p"]
    pkg = run_package(shared_copra, s3, url, {"hls": {"path": "/hls"}, "variants": variants}, tmp_path, timeout=300)
    ladder = ladder_of(shared_copra, pkg)
    by_name = {r["name"]: r for r in ladder["rungs"]}
    assert list(by_name) == ["720p", "480p", "360p"] and ladder["vmaf"] == 93, ladder
    assert by_name["360p"]["crf"] == 23, by_name["360p"]
    for name, vmaf in targets.items():
        theirs = independent_vmaf(rung_as_mp4(pkg, name, tmp_path), source, tmp_path)
        print(name, by_name[name], f"independent {theirs:.2f}")
        assert abs(theirs - vmaf) <= 1.5, (name, theirs, by_name[name])


@pytest.mark.parametrize("format, params, code, needle", [
    ("httpstream:::vmaf=93", {**PACKAGE, "variants": ["mp4:720p"]}, "format_not_valid", "auto"),
    ("httpstream:::vmaf=120", {**PACKAGE, "variants": "auto"}, "format_not_valid", "vmaf"),
    ("httpstream", {**PACKAGE, "variants": "automatic"}, "output_param_not_valid", "auto"),
])
def test_bad_auto_ladders_are_refused_at_submit(shared_copra, media_server, format, params, code, needle):
    created = shared_copra.post_job({
        "input": {"url": f"{media_server}/ladder/simple.mp4"},
        "storage": {"service": "local"},
        "outputs": {format: {"key": "p", **params}},
    })
    assert created.status_code == 400, created.text
    body = created.json()
    assert body["status"] == "error" and body["error_code"] == code and needle in body["message"], body
