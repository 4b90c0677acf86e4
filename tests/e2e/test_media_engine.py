"""The media engine runs in a confined process of its own: FFmpeg parses strangers' files
there, away from the server's keys, database and network. Checked from outside, as an
operator would: the child's /proc, its descriptors and environment; a child killed with
SIGSEGV ends its own job only; the limits on memory, CPU and bytes written stop it with
a message naming the key; `copra engine-check` sees every forbidden thing refused."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import COPRA_BIN, KEY_A, KEY_B, Copra, wait_until

ENGINE = "__media-engine"


def children(pid: int) -> list:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def cmdline(pid: int) -> list:
    try:
        return [part.decode() for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if part]
    except OSError:
        return []


def engines(server, label=None) -> list:
    """The server's media engine processes (of the job `label`, when given)."""
    found = []
    for pid in children(server.proc.pid):
        args = cmdline(pid)
        if len(args) >= 3 and args[1] == ENGINE and (label is None or args[2] == label):
            found.append(pid)
    return found


def proc_status(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def local_job(media_server, name="long.mp4", output="mp4:720p", **extra):
    return {"input": {"url": f"{media_server}/{name}"}, "storage": {"service": "local"},
            "outputs": {output: {"path": f"/{output.replace(':', '_')}.out"}}, **extra}


def inspect(pid: int) -> dict:
    """What /proc shows of a process: its status, environment and descriptors."""
    fds = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            fds[fd.name] = os.readlink(fd)
        except OSError:
            pass
    return {"status": proc_status(pid), "environ": Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"), "fds": fds}


def confined_engine(server, job_id, timeout=60):
    """What /proc shows of a running engine process of `job_id` that has confined itself
    (a process that ends while it is looked at is passed over for the next)."""
    def confined():
        for pid in engines(server, job_id):
            try:
                seen = inspect(pid)
                if seen["status"].get("Seccomp") == "2" and proc_status(pid):
                    return seen
            except OSError:
                continue
        return None
    return wait_until(confined, timeout, f"a confined engine of job {job_id}", interval=0.02)


def test_the_engine_is_a_confined_process_with_nothing_of_the_server(copra, media_server):
    created = copra.post_job(local_job(media_server))
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    seen = confined_engine(copra, job_id)
    status = seen["status"]
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2", status
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0, status
    # An empty environment: no secret, no database URL (the server has both).
    environ = seen["environ"]
    assert not any(var.startswith(b"COPRA_") or b"DATABASE" in var for var in environ), environ
    assert copra.env["COPRA_API_KEYS"].encode() not in b"\0".join(environ)
    # Its descriptors: its pipes and the job's own files, nothing of the server's.
    work = (copra.data_dir / "work" / job_id).resolve()
    for fd, target in seen["fds"].items():
        assert target.startswith("pipe:") or target.startswith(str(work)) or target == "/dev/null", (fd, target)
    done = copra.wait_job(job_id, timeout=180)
    assert done["status"] == "job.completed", done
    # What the confined engine wrote is a real video.
    metadata = requests.get(f"{copra.url}/v2/metadata/jobs/{job_id}/mp4:720p", auth=(KEY_A, ""), timeout=10).json()
    assert json.dumps(metadata).count("h264") >= 1, metadata


def test_engine_check_sees_every_forbidden_thing_refused(tmp_path):
    result = subprocess.run([str(COPRA_BIN), "engine-check", "--json"], capture_output=True, text=True, timeout=120,
                            env={"PATH": os.environ["PATH"], "COPRA_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    # This machine's kernel has Landlock (ABI 6 or later).
    assert report["landlock"] == "full", report
    checks = {c["what"]: c for c in report["checks"]}
    for what in ["read a file outside its input and work directory", "read the server's environment",
                 "make a symbolic link in its work directory", "open a TCP socket", "open a Unix socket",
                 "start a process", "run a program", "signal the server", "trace the server",
                 "raise its memory limit"]:
        assert checks[what]["refused"], checks[what]


def test_a_crashed_engine_ends_its_own_job_only(copra, media_server):
    victim = copra.post_job(local_job(media_server)).json()["id"]
    kills = 0
    deadline = time.time() + 240
    bystander = None
    while time.time() < deadline:
        job = copra.get_job(victim).json()
        if job["status"] in ("job.completed", "job.failed"):
            break
        for pid in engines(copra, victim):
            try:
                os.kill(pid, signal.SIGSEGV)
                kills += 1
            except ProcessLookupError:
                pass
        if kills and bystander is None:
            # Another tenant's job, submitted while the victim's engine crashes.
            bystander = copra.post_job(local_job(media_server, "input.mp4", "mp4:240p"), key=KEY_B).json()["id"]
        time.sleep(0.02)
    assert job["status"] == "job.failed", job
    # Each attempt's engine was killed; the last attempt's failure says what happened.
    assert kills >= 3, kills
    assert "The media engine stopped: signal 11 (SIGSEGV)" in json.dumps(job), job
    assert "given back for attempt 2 of 3" in copra.logs()
    other = copra.wait_job(bystander, key=KEY_B)
    assert other["status"] == "job.completed", other
    assert requests.get(f"{copra.url}/health", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def size_switch(tmp_path_factory) -> Path:
    """A raw H.264 stream that is small for a second, then 4K with 16 reference frames:
    its probe sees 320x240, so its plan's estimate is small; its decoder holds far more."""
    d = tmp_path_factory.mktemp("switch")
    for name, size, duration in [("small", "320x240", 1), ("big", "3840x2160", 4)]:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={duration}",
                        "-c:v", "libx264", "-preset", "ultrafast", "-refs", "16", "-bf", "0", "-pix_fmt", "yuv420p",
                        "-bsf:v", "h264_mp4toannexb", str(d / f"{name}.h264")], check=True)
    (d / "switch.h264").write_bytes((d / "small.h264").read_bytes() + (d / "big.h264").read_bytes())
    return d


def limited_copra(tmp_path, **limits) -> Copra:
    env = {f"COPRA_LIMITS_{key.upper()}": str(value) for key, value in limits.items()}
    return Copra(tmp_path / "data", env).start()


def test_an_engine_that_outgrows_max_job_memory_is_stopped(tmp_path, media_server, media_dir, size_switch):
    for name in ("switch.h264", "small.h264"):
        (media_dir / name).write_bytes((size_switch / name).read_bytes())
    server = limited_copra(tmp_path, max_job_memory_mib=200)
    try:
        # A small input encodes within the limit.
        small = server.post_job(local_job(media_server, "small.h264", "mp4:240p")).json()["id"]
        assert server.wait_job(small)["status"] == "job.completed"
        # The plan fits (estimated about 160 MiB for what the probe sees, 320x240); the
        # decoder then meets 4K frames and holds 16 of them (measured: about 380 MiB).
        job = server.post_job(local_job(media_server, "switch.h264", "mp4:240p"))
        assert job.status_code == 201, job.text
        done = server.wait_job(job.json()["id"], timeout=180)
        assert done["status"] == "job.failed", done
        assert "exceeded max_job_memory_mib (200)" in done["outputs"][0]["error"], done
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
    finally:
        server.stop()


def test_an_engine_past_max_job_cpu_secs_is_stopped(tmp_path, media_server):
    server = limited_copra(tmp_path, max_job_cpu_secs=1)
    try:
        # Many seconds of CPU: 20 s of 720p with x264's slow preset.
        slow = server.post_job(local_job(media_server, "long.mp4", "mp4:720p::preset=slow")).json()["id"]
        done = server.wait_job(slow, timeout=180)
        assert done["status"] == "job.failed", done
        assert "exceeded max_job_cpu_secs (1)" in done["outputs"][0]["error"], done
    finally:
        server.stop()


def test_a_job_writing_past_max_output_bytes_is_stopped(tmp_path, media_server):
    server = limited_copra(tmp_path, max_output_bytes=300_000)
    try:
        # One small output fits.
        small = server.post_job(local_job(media_server, "input.mp4", "mp4:240p")).json()["id"]
        assert server.wait_job(small)["status"] == "job.completed"
        # 400 large pictures: far more bytes than allowed, each file below the limit.
        pictures = {"input": {"url": f"{media_server}/long.mp4"}, "storage": {"service": "local"},
                    "outputs": {"jpg:1280x720": {"path": "/t/thumb_%.4d.jpg", "number": 400}}}
        created = server.post_job(pictures)
        assert created.status_code == 201, created.text
        done = server.wait_job(created.json()["id"], timeout=180)
        assert done["status"] == "job.failed", done
        assert "exceeded max_output_bytes (300000)" in done["outputs"][0]["error"], done
        # One file past the limit is stopped by the kernel's file size limit.
        big = server.post_job(local_job(media_server, "long.mp4", "mp4:720p")).json()["id"]
        done = server.wait_job(big, timeout=180)
        assert done["status"] == "job.failed", done
        assert "exceeded max_output_bytes (300000)" in done["outputs"][0]["error"], done
    finally:
        server.stop()
