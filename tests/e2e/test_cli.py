"""The user's command line against a real server: `copra submit` follows a job to its
end and prints its outputs' URLs (non-zero when it fails), `--dry-run` prints the plan,
`copra jobs show|watch`, `copra probe` and `copra completions`."""

import json
import os
import subprocess

from conftest import COPRA_BIN, KEY_A, KEY_B


def run(args, server, key=KEY_A, stdin=None, cwd=None, timeout=180):
    env = dict(os.environ, COPRA_SERVER=server.url, COPRA_API_KEY=key)
    return subprocess.run([str(COPRA_BIN), *args], env=env, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_submit_follows_the_job_and_prints_its_outputs(shared_copra, media_server, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": {"service": "local", "path": "/cli"},
        "outputs": {"mp4:240p": {"path": "a.mp4"}, "jpg:160x": {"path": "t.jpg"}},
    }))
    done = run(["submit", str(job)], shared_copra, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in done.stdout.strip().splitlines()]
    assert {line[0] for line in lines} == {"mp4:240p", "jpg:160x"}, done.stdout
    assert all(line[2].startswith(f"{shared_copra.url}/files/") for line in lines), done.stdout
    assert "job.completed" in done.stderr
    assert not (tmp_path / "data").exists(), "a client given its server and key makes no data directory"

    # The job it made is the tenant's, as the API shows it.
    job_id = done.stderr.split()[1]
    shown = run(["jobs", "show", job_id], shared_copra, cwd=tmp_path)
    assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "job.completed"
    other = run(["jobs", "show", job_id], shared_copra, key=KEY_B, cwd=tmp_path)
    assert other.returncode != 0 and "job_not_found" in other.stderr
    watched = run(["jobs", "watch", job_id], shared_copra, cwd=tmp_path)
    assert watched.returncode == 0 and watched.stdout == done.stdout


def test_a_failed_job_exits_non_zero_and_a_dry_run_runs_nothing(shared_copra, media_server, tmp_path):
    failing = json.dumps({
        "input": {"url": f"{media_server}/not-media.mp4"},
        "storage": {"service": "local", "path": "/cli"},
        "outputs": {"mp4:240p": {"path": "x.mp4"}},
    })
    done = run(["submit", "-"], shared_copra, stdin=failing, cwd=tmp_path)
    assert done.returncode != 0 and "job.failed" in done.stderr, done.stderr

    planned = json.dumps({
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": {"service": "local", "path": "/cli"},
        "outputs": {"mp4:240p": {"path": "p.mp4"}},
    })
    plan = run(["submit", "--dry-run", "-"], shared_copra, stdin=planned, cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    answer = json.loads(plan.stdout)
    assert answer["dry_run"] is True and answer["outputs"][0]["plan"]["video"]["height"] == 240

    refused = run(["submit", "-"], shared_copra, stdin=json.dumps({"input": {}}), cwd=tmp_path)
    assert refused.returncode != 0 and "400" in refused.stderr, refused.stderr


def test_probe_and_completions(media_dir, media_server, tmp_path):
    local = subprocess.run([str(COPRA_BIN), "probe", str(media_dir / "input.mp4")], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    video = next(s for s in json.loads(local.stdout)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (1280, 720)
    remote = subprocess.run([str(COPRA_BIN), "probe", f"{media_server}/input.mp4"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert remote.returncode == 0 and json.loads(remote.stdout)["streams"] == json.loads(local.stdout)["streams"]
    bad = subprocess.run([str(COPRA_BIN), "probe", str(media_dir / "not-media.mp4")], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert bad.returncode != 0
    bash = subprocess.run([str(COPRA_BIN), "completions", "bash"], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert bash.returncode == 0 and "complete -F" in bash.stdout and "submit" in bash.stdout
