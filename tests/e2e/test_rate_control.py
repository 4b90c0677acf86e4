"""Rate control measured on the files, not in the format plugin's plan: if the host
dropped `quality`, `maxrate`/`bufsize`, `preset`, Octet's `qp` or `coder`, these fail.

- `quality` 1 < 3 < 5: the bit rate rises with quality (CRF 30 / 23 / 18 for h264);
- `maxrate` + `bufsize`: no 1-second window of the file carries more than the rate plus
  its buffer, where the same output without them carries several times more;
- the encoder's own settings block (x264's and x265's SEI "options:" string, written
  into the stream by the encoder) names the preset's settings, `rc=cqp qp=30` and
  `cabac=0` for an Octet `constqp`/`cavlc` output."""

import re
import subprocess
import uuid

import pytest

from conftest import S3_ACCESS, S3_SECRET, s3_storage

FPS = 25
DURATION = 6


@pytest.fixture(scope="module")
def source(media_dir, media_server):
    """640x360 testsrc2 (moving, detailed: bit rates differ clearly with quality), encoded
    near-losslessly so the input's own artefacts do not flatten the differences."""
    d = media_dir / "rate"
    d.mkdir(exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate={FPS}:duration={DURATION}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={DURATION}",
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "10", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
         str(d / "detail.mp4")],
        check=True,
    )
    return f"{media_server}/rate/detail.mp4"


OUTPUTS = {
    "mp4:640x::quality=1": {"key": "q1", "path": "/q1.mp4"},
    "mp4:640x::quality=3": {"key": "q3", "path": "/q3.mp4"},
    "mp4:640x::quality=5": {"key": "q5", "path": "/q5.mp4"},
    "mp4:640x::quality=5,maxrate=150k,bufsize=150k": {"key": "capped", "path": "/capped.mp4"},
    "mp4:640x::preset=ultrafast": {"key": "ultrafast", "path": "/ultrafast.mp4"},
    "mp4:hevc_640x": {"key": "hevc", "path": "/hevc.mp4"},
    "mp4:hevc_640x::preset=ultrafast": {"key": "hevc-ultrafast", "path": "/hevc-ultrafast.mp4"},
}


@pytest.fixture(scope="module")
def files(shared_copra, s3, source, tmp_path_factory):
    """Every output of one job, fetched from the bucket: key -> local path."""
    prefix = f"/rate-{uuid.uuid4().hex[:6]}"
    created = shared_copra.post_job({"input": {"url": source}, "storage": s3_storage(s3, path=prefix), "outputs": OUTPUTS})
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"], timeout=300)
    assert final["status"] == "job.completed", final
    out = tmp_path_factory.mktemp("rate")
    local = {}
    for o in final["outputs"]:
        assert o["status"] == "video.encoded", o
        key = o["url"].split(f"/{s3['bucket']}/", 1)[1]
        local[o["key"]] = out / f"{o['key']}.mp4"
        s3["client"].download_file(s3["bucket"], key, str(local[o["key"]]))
    return local


def packets(path):
    """(pts seconds, size bytes) of every video packet."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,size",
         "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    rows = [line.split(",") for line in out.split()]
    return sorted((float(t), int(s)) for t, s in rows)


def kbps(path) -> float:
    """The video stream's mean bit rate over the file."""
    p = packets(path)
    return sum(s for _, s in p) * 8 / 1000 / DURATION


def peak_window_kbit(path, window=1.0) -> float:
    """The most video bits any `window`-second span starting at a packet carries."""
    p = packets(path)
    best = 0
    for i, (start, _) in enumerate(p):
        best = max(best, sum(s for t, s in p[i:] if t < start + window))
    return best * 8 / 1000


def encoder_settings(path) -> dict:
    """The encoder's settings block (x264/x265 write their options into an SEI of the
    first frame) as a dict: {"cabac": "1", "rc": "crf", ...}."""
    data = path.read_bytes()
    m = re.search(rb"(x264 - core|x265 \(build).{0,400}?options: ([^\x00]+)", data, re.S)
    assert m, f"no encoder settings block in {path.name}"
    pairs = [item.split("=", 1) for item in m.group(2).decode("latin-1").split() if "=" in item]
    return {k: v for k, v in pairs}


def test_bit_rate_rises_with_quality(files):
    rates = {q: kbps(files[q]) for q in ("q1", "q3", "q5")}
    assert rates["q1"] < rates["q3"] < rates["q5"], rates
    # CRF 30 → 18 is a large step: far more than noise between runs.
    assert rates["q5"] > 2 * rates["q1"], rates
    crf = {q: float(encoder_settings(files[q])["crf"]) for q in ("q1", "q3", "q5")}
    assert crf == {"q1": 30.0, "q3": 23.0, "q5": 18.0}, crf


def test_maxrate_and_bufsize_bound_every_second(files):
    free, capped = files["q5"], files["capped"]
    # Without the cap the same settings spend far more: the cap really binds here.
    assert peak_window_kbit(free) > 3 * (150 + 150), peak_window_kbit(free)
    peak = peak_window_kbit(capped)
    assert peak <= 150 + 150, f"a 1 s window carries {peak:.0f} kbit, over maxrate 150k + bufsize 150k"
    assert kbps(capped) <= 150 * 1.1, kbps(capped)
    settings = encoder_settings(capped)
    assert (settings["vbv_maxrate"], settings["vbv_bufsize"]) == ("150", "150"), settings


def test_preset_is_in_the_encoders_settings(files):
    medium, fast = encoder_settings(files["q3"]), encoder_settings(files["ultrafast"])
    # x264's medium preset: CABAC, 3 references, hex search, subme 7; ultrafast: none of it.
    assert (medium["cabac"], medium["ref"], medium["me"], medium["subme"]) == ("1", "3", "hex", "7"), medium
    assert (fast["cabac"], fast["ref"], fast["me"], fast["subme"]) == ("0", "1", "dia", "0"), fast
    hevc, hevc_fast = encoder_settings(files["hevc"]), encoder_settings(files["hevc-ultrafast"])
    # x265 numbers its searches: medium is hex (1), subme 2, 3 references; ultrafast dia (0), 0, 1.
    assert hevc["rc"] == "crf", hevc
    assert (hevc["me"], hevc["subme"], hevc["ref"]) == ("1", "2", "3"), hevc
    assert (hevc_fast["me"], hevc_fast["subme"], hevc_fast["ref"]) == ("0", "0", "1"), hevc_fast


def test_octet_qp_and_coder_reach_the_encoder(shared_copra, s3, source, tmp_path):
    import requests

    from test_octet import KEY_A, wait_octet
    body = {
        "input": {"url": source},
        "destination": {"provider": "s3", "region": "us-east-1", "bucket": s3["bucket"], "endpoint": s3["endpoint"],
                        "creds": {"access_key_id": S3_ACCESS, "secret_access_key": S3_SECRET}},
        "outputs": [
            {"codec": "h264", "resolution": "-1x360", "dest_path": f"rate-octet/{uuid.uuid4().hex[:6]}/qp.mp4",
             "rc": "constqp", "qp": 30, "coder": "cavlc", "preset": "slow"},
        ],
    }
    created = requests.post(f"{shared_copra.url}/v0/jobs/create", auth=(KEY_A, ""), json=body, timeout=30)
    assert created.status_code == 200, created.text
    final = wait_octet(shared_copra, created.json()["job_id"], timeout=300)
    assert final["status"] == "complete", final
    local = tmp_path / "qp.mp4"
    s3["client"].download_file(s3["bucket"], body["outputs"][0]["dest_path"], str(local))
    settings = encoder_settings(local)
    assert (settings["rc"], settings["qp"], settings["cabac"]) == ("cqp", "30", "0"), settings
    # x264's slow preset: 5 references, subme 8 (medium has 3 and 7).
    assert (settings["ref"], settings["subme"]) == ("5", "8"), settings
