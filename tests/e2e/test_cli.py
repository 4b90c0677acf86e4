"""The user's command line against a real server: `copra submit` follows a job to its
end and prints its outputs' URLs (non-zero when it fails), `--dry-run` prints the plan,
`copra jobs list|show|watch`, `copra probe` and `copra completions`."""

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


def test_jobs_list_shows_the_tenants_jobs_newest_first(copra, media_server, tmp_path):
    def job(name, input_name="input.mp4"):
        return json.dumps({
            "input": {"url": f"{media_server}/{input_name}"},
            "storage": {"service": "local", "path": "/list"},
            "outputs": {"jpg:160x": {"path": f"{name}.jpg"}},
        })

    # Each submit follows its job to the end, so the three are created one after another.
    ok = run(["submit", "-"], copra, stdin=job("ok"), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    failed = run(["submit", "-"], copra, stdin=job("bad", "not-media.mp4"), cwd=tmp_path)
    assert failed.returncode != 0
    other = run(["submit", "--detach", "-"], copra, key=KEY_B, stdin=job("b"), cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    ok_id, failed_id, other_id = ok.stderr.split()[1], failed.stderr.split()[1], other.stdout.strip()

    listed = run(["jobs", "list"], copra, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert lines[0].split() == ["ID", "STATUS", "PROGRESS", "CREATED", "OUTPUTS"], listed.stdout
    rows = [line.split() for line in lines[1:]]
    assert [row[0] for row in rows] == [failed_id, ok_id], "newest first, and only this key's jobs"
    assert rows[0][1] == "job.failed" and rows[1][1:3] == ["job.completed", "100%"] and rows[1][-1] == "1/1", listed.stdout
    assert other_id not in listed.stdout

    as_json = json.loads(run(["jobs", "list", "--json"], copra, cwd=tmp_path).stdout)
    assert [j["id"] for j in as_json["jobs"]] == [failed_id, ok_id]
    assert as_json["jobs"][1]["outputs"][0]["status"] == "image.created"
    completed = json.loads(run(["jobs", "list", "--json", "--status", "job.completed"], copra, cwd=tmp_path).stdout)
    assert [j["id"] for j in completed["jobs"]] == [ok_id]
    newest = json.loads(run(["jobs", "list", "--json", "--limit", "1"], copra, cwd=tmp_path).stdout)
    assert [j["id"] for j in newest["jobs"]] == [failed_id]
    assert [j["id"] for j in json.loads(run(["jobs", "list", "--json"], copra, key=KEY_B, cwd=tmp_path).stdout)["jobs"]] == [other_id]

    bad_status = run(["jobs", "list", "--status", "done"], copra, cwd=tmp_path)
    assert bad_status.returncode != 0 and "request_not_valid" in bad_status.stderr, bad_status.stderr
    bad_limit = run(["jobs", "list", "--limit", "0"], copra, cwd=tmp_path)
    assert bad_limit.returncode != 0 and "request_not_valid" in bad_limit.stderr, bad_limit.stderr


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
