"""The examples a new user runs first, run here against the real server: every job file of
examples/jobs/ is accepted and planned (dry run), the curl walk-through runs a job to the
end, Coconut's own Node.js client (coconutjs from npm) runs one unchanged, and the
multi-node script brings up API nodes and workers on PostgreSQL that run a job."""

import json
import os
import random
import re
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from conftest import COPRA_BIN, KEY_A, PG_SERVER, ROOT, S3_ACCESS, S3_SECRET, answers, pg_database, port_taken, wait_until

EXAMPLES = ROOT / "examples"
JOBS = sorted((EXAMPLES / "jobs").glob("*.json"))


def render(path, env) -> dict:
    text = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: env[m.group(1)], path.read_text())
    return json.loads(text)


@pytest.fixture(scope="module")
def example_env(media_server, s3, webhooks):
    return {"INPUT_URL": f"{media_server}/input.mp4", "S3_BUCKET": s3["bucket"], "S3_ENDPOINT": s3["endpoint"],
            "S3_ACCESS_KEY_ID": S3_ACCESS, "S3_SECRET_ACCESS_KEY": S3_SECRET, "WEBHOOK_URL": f"{webhooks.url}/examples"}


@pytest.mark.parametrize("path", [p for p in JOBS if not p.name.startswith("octet")], ids=lambda p: p.name)
def test_every_example_job_is_planned(shared_copra, example_env, path):
    r = requests.post(f"{shared_copra.url}/v2/jobs", params={"dry_run": "true"}, auth=(KEY_A, ""),
                      json=render(path, example_env), timeout=120)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["input"]["status"] == "input.transferred", plan["input"]
    assert plan["outputs"] and all(o["status"] in ("planned", "skipped") for o in plan["outputs"]), plan["outputs"]
    assert any(o["status"] == "planned" for o in plan["outputs"])


def test_the_octet_example_runs(shared_copra, example_env, s3):
    body = render(EXAMPLES / "jobs" / "octet-v0.json", example_env)
    r = requests.post(f"{shared_copra.url}/v0/jobs/create", auth=(KEY_A, ""), json=body, timeout=30)
    assert r.status_code == 200, r.text
    from test_octet import wait_octet
    final = wait_octet(shared_copra, r.json()["job_id"], timeout=180)
    assert final["status"] == "complete", final
    keys = {o["Key"] for o in s3["client"].list_objects_v2(Bucket=s3["bucket"], Prefix="examples/octet/")["Contents"]}
    assert keys == {"examples/octet/vid_720.mp4", "examples/octet/vid_360.mp4"}


def test_the_curl_walkthrough(shared_copra, example_env, tmp_path):
    env = dict(os.environ, **example_env, COPRA_URL=shared_copra.url, COPRA_API_KEY=KEY_A, OUT_DIR=str(tmp_path))
    done = subprocess.run([str(EXAMPLES / "walkthrough.sh"), str(EXAMPLES / "jobs" / "04-same-format-different-settings.json")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    job_id = done.stdout.strip()
    assert shared_copra.get_job(job_id).json()["status"] == "job.completed"
    assert "dry_run=true" in done.stderr and "/metadata/jobs/" in done.stderr
    assert (tmp_path / "trailer.mp4").stat().st_size > 1000, list(tmp_path.iterdir())


def test_coconuts_node_client_unchanged(shared_copra, media_server):
    node_dir = EXAMPLES / "coconut-node"
    assert (node_dir / "node_modules" / "coconutjs").is_dir(), "scripts/setup.sh --tests installs the example's packages"
    env = dict(os.environ, COPRA_URL=shared_copra.url, COPRA_API_KEY=KEY_A, INPUT_URL=f"{media_server}/input.mp4",
               OUTPUT_PATH=f"/node-{uuid.uuid4().hex[:6]}")
    done = subprocess.run(["node", "submit.js"], cwd=node_dir, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = [line.split("\t") for line in done.stdout.strip().splitlines()]
    assert {line[0] for line in lines} == {"mp4:360p", "jpg:160x"}, done.stdout
    assert len([line for line in lines if line[0] == "jpg:160x"]) == 2
    assert all(line[2].startswith(f"{shared_copra.url}/files/") for line in lines)
    assert "metadata for: jpg:160x, mp4:360p, source" in done.stderr, done.stderr
    # And its errors: a wrong key is Coconut's error, as the client reports it.
    bad = subprocess.run(["node", "submit.js"], cwd=node_dir, env=dict(env, COPRA_API_KEY="wrong"),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "authentication_failed" in bad.stderr, bad.stderr


def test_the_cluster_script(tmp_path, media_server):
    with pg_database("copra_ex_") as name:
        stopped = run_the_cluster_script(tmp_path, media_server, name)
    assert stopped, "every process stopped with the script"


def node_ports() -> int:
    """The first of two free ports for the script's API nodes, below the kernel's
    ephemeral range: the nodes' own connections (to PostgreSQL, to each other) take
    ephemeral ports, and one once took the second node's port before it could listen."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(1000):
        base = random.randrange(max(1024, low - 16000), low - 2)
        if not any(port_taken(p) for p in (base, base + 1)):
            return base
    raise AssertionError("no two free ports below the ephemeral range")


def run_the_cluster_script(tmp_path, media_server, database) -> bool:
    """Run examples/cluster/run.sh on `database` through a job; whether every process
    stopped with the script."""
    base = node_ports()
    env = dict(os.environ, COPRA_DATABASE_URL=f"{PG_SERVER}/{database}", API_NODES="2", WORKERS="2", BASE_PORT=str(base),
               CLUSTER_DIR=str(tmp_path / "cluster"), COPRA_BIN=str(COPRA_BIN), COPRA_OUTBOUND_ALLOW="127.0.0.0/8")
    for var in ("COPRA_API_KEYS", "COPRA_ADMIN_KEY", "COPRA_DATA_DIR", "COPRA_LISTEN", "COPRA_CONFIG"):
        env.pop(var, None)
    script = subprocess.Popen([str(EXAMPLES / "cluster" / "run.sh")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    try:
        nodes = [f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"]
        for node in nodes:
            wait_until(lambda: answers(f"{node}/readyz"), 60, f"{node}/readyz")
        shared = dict(line.split("=", 1) for line in (tmp_path / "cluster" / "shared.env").read_text().split())
        key = shared["COPRA_API_KEYS"]
        r = requests.post(f"{nodes[0]}/v2/jobs", auth=(key, ""), timeout=30, json={
            "input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local", "path": "/cluster"},
            "outputs": {"mp4:240p": {"path": "a.mp4"}}})
        assert r.status_code == 201, r.text

        def done():
            view = requests.get(f"{nodes[1]}/v2/jobs/{r.json()['id']}", auth=(key, ""), timeout=10).json()
            return view if view["status"] in ("job.completed", "job.failed") else None
        final = wait_until(done, 120, "the job, read from the other API node", interval=0.2)
        assert final["status"] == "job.completed", final
        got = requests.get(final["outputs"][0]["url"], auth=(key, ""), timeout=30)
        assert got.status_code == 200 and len(got.content) > 1000
    finally:
        # SIGTERM to the script alone: it stops its processes.
        script.send_signal(signal.SIGTERM)
        try:
            script.wait(60)
            stopped = not any(port_taken(p) for p in (base, base + 1))
        finally:
            try:
                os.killpg(script.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return stopped
