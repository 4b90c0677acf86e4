"""What a person watching Copra sees: a job's progress as Server-Sent Events (resumable
with Last-Event-ID, tenant-checked), liveness and readiness probes, and Prometheus
metrics that move with the work done."""

import json
import re
import time

import requests

from conftest import ADMIN_KEY, KEY_A, KEY_B, Copra, wait_until


def read_sse(response, limit=10_000):
    """Parses an SSE response into a list of {event, id, data} until the server ends it."""
    messages, current = [], {}
    for raw in response.iter_lines(decode_unicode=True):
        if raw is None:
            continue
        line = raw.rstrip("\r")
        if line == "":
            if "data" in current:
                messages.append(current)
            current = {}
            if len(messages) >= limit:
                break
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            current["data"] = current.get("data", "") + value
        elif field in ("event", "id"):
            current[field] = value
    return messages


def long_job(media_server):
    return {
        "input": {"url": f"{media_server}/long.mp4"},
        "storage": {"service": "local", "path": "/sse"},
        "outputs": {"mp4:360p": {"path": "a.mp4"}, "jpg:320x": {"path": "t.jpg"}},
    }


def test_progress_stream_follows_a_job_to_its_end_and_resumes_without_loss(shared_copra, media_server):
    created = shared_copra.post_job(long_job(media_server))
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    url = f"{shared_copra.url}/v2/jobs/{job_id}/events"

    started = time.monotonic()
    with requests.get(url, auth=(KEY_A, ""), stream=True, timeout=180) as response:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = read_sse(response)
    assert time.monotonic() - started < 170, "the stream ended with the job"

    names = [m.get("event") for m in messages]
    events = [m for m in messages if m.get("event") != "job.status"]
    statuses = [json.loads(m["data"]) for m in messages if m.get("event") == "job.status"]
    # Every recorded event once, in order, the final one last among them.
    assert [e["event"] for e in events] == ["input.transferred", "output.completed", "output.completed", "job.completed"], names
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Status ticks: the job as GET shows it, progress moving up, ending completed.
    assert statuses[-1]["status"] == "job.completed" and statuses[-1]["progress"] == "100%"
    assert statuses[-1] == shared_copra.get_job(job_id).json()
    progress = [int(s["progress"].rstrip("%")) for s in statuses]
    assert progress == sorted(progress), progress
    assert len(set(progress)) >= 3, f"progress ticks seen along the way: {progress}"
    assert messages[-1]["event"] == "job.status", "the final status closes the stream"

    # Resuming after the first event: the later events, none repeated, then the status.
    first = events[0]["id"]
    with requests.get(url, auth=(KEY_A, ""), headers={"Last-Event-ID": first}, stream=True, timeout=30) as response:
        resumed = read_sse(response)
    assert [m["event"] for m in resumed if m["event"] != "job.status"] == ["output.completed", "output.completed", "job.completed"]
    assert [m["id"] for m in resumed if m["event"] != "job.status"] == [e["id"] for e in events[1:]]
    assert json.loads(resumed[-1]["data"])["status"] == "job.completed"

    # Another key's job, an unknown job, no key.
    assert requests.get(url, auth=(KEY_B, ""), timeout=10).status_code == 404
    other = requests.get(f"{shared_copra.url}/v2/jobs/nope/events", auth=(KEY_A, ""), timeout=10)
    assert other.status_code == 404 and other.json()["error_code"] == "job_not_found"
    assert requests.get(url, timeout=10).status_code == 401


def test_a_stream_opened_on_a_failed_job_ends_with_its_failure(shared_copra, media_server):
    created = shared_copra.post_job({
        "input": {"url": f"{media_server}/not-media.mp4"},
        "storage": {"service": "local", "path": "/sse"},
        "outputs": {"mp4:360p": {"path": "x.mp4"}},
    })
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    shared_copra.wait_job(job_id)
    with requests.get(f"{shared_copra.url}/v2/jobs/{job_id}/events", auth=(KEY_A, ""), stream=True, timeout=30) as response:
        messages = read_sse(response)
    assert [m["event"] for m in messages if m["event"] != "job.status"][-1] == "job.failed"
    assert json.loads(messages[-1]["data"])["status"] == "job.failed"


def metric_values(text, name):
    """{labels-string: value} of every sample of `name` in Prometheus text."""
    values = {}
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", line)
        if match:
            values[match.group(1) or ""] = float(match.group(2))
    return values


def test_probes_answer_and_metrics_move_with_the_work(shared_copra, media_server, webhooks):
    assert requests.get(f"{shared_copra.url}/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{shared_copra.url}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"] == "ok" and ready.json()["plugins"]["loaded"] >= 4

    # Operators' numbers are behind the admin key.
    assert requests.get(f"{shared_copra.url}/metrics", timeout=5).status_code == 401
    assert requests.get(f"{shared_copra.url}/metrics", auth=(KEY_A, ""), timeout=5).status_code == 401

    def scrape():
        got = requests.get(f"{shared_copra.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=5)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("text/plain")
        return got.text

    before = scrape()
    completed_before = metric_values(before, "copra_jobs").get('{status="job.completed"}', 0)
    created = shared_copra.post_job({
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": {"service": "local", "path": "/metrics"},
        "notification": {"type": "http", "url": f"{webhooks.url}/metrics-hook", "events": True},
        "outputs": {"mp4:240p": {"path": "m.mp4"}},
    })
    assert created.status_code == 201, created.text
    assert shared_copra.wait_job(created.json()["id"])["status"] == "job.completed"
    webhooks.wait_for("/metrics-hook", "job.completed")

    def moved():
        text = scrape()
        return text if metric_values(text, "copra_webhook_deliveries_total").get('{result="delivered"}', 0) >= 1 else None

    after = wait_until(moved, 20, "a delivered webhook counted")
    assert metric_values(after, "copra_jobs")['{status="job.completed"}'] == completed_before + 1
    assert metric_values(after, "copra_queue_depth")[""] >= 0
    assert metric_values(after, "copra_input_bytes_total")[""] > metric_values(before, "copra_input_bytes_total").get("", 0)
    assert metric_values(after, "copra_output_bytes_total")[""] > 0
    encodes = metric_values(after, "copra_encode_seconds_count")
    assert encodes.get('{format="mp4"}', 0) >= 1, encodes
    calls = metric_values(after, "copra_plugin_call_seconds_count")
    assert any('plugin="format-video"' in k and 'function="plan"' in k for k in calls), calls
    assert any('plugin="notifier-http"' in k and 'function="notify"' in k for k in calls), calls
    assert "# TYPE copra_plugin_call_seconds histogram" in after


def test_media_failures_are_counted_by_what_failed(shared_copra, media_server):
    """A file that is not media fails in the confined engine's probe: counted as the
    input's failure, so an operator tells bad uploads from encoder or engine trouble."""

    def inputs_failed():
        got = requests.get(f"{shared_copra.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=5)
        assert got.status_code == 200, got.text
        return metric_values(got.text, "copra_media_failures_total").get('{kind="input"}', 0)

    before = inputs_failed()
    created = shared_copra.post_job({
        "input": {"url": f"{media_server}/not-media.mp4"},
        "storage": {"service": "local", "path": "/failures"},
        "outputs": {"mp4:240p": {"path": "x.mp4"}},
    })
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"], timeout=60)
    assert final["status"] == "job.failed" and final["input"]["status"] == "input.failed", final
    # The counter is the worker's process's own, and the job's status is written after it.
    wait_until(lambda: inputs_failed() >= before + 1, 10, "the input's failure counted")


def test_json_logs_carry_the_job_span(tmp_path, media_server):
    server = Copra(tmp_path / "data", {"COPRA_LOG_FORMAT": "json", "RUST_LOG": "info"}).start()
    try:
        created = server.post_job({
            "input": {"url": f"{media_server}/input.mp4"},
            "storage": {"service": "local", "path": "/json"},
            "outputs": {"jpg:160x": {"path": "t.jpg"}},
        })
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        assert server.wait_job(job_id)["status"] == "job.completed"
    finally:
        server.stop()
    lines = [line for line in server.logs().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]  # every log line is one JSON object
    assert len(records) >= 3 and all("level" in r and "fields" in r for r in records)
    in_job = [r for r in records if any(s.get("name") == "job" and s.get("job_id") == job_id for s in r.get("spans", []))]
    assert any(r["fields"].get("message") == "job started" for r in in_job), in_job[:3]


def test_dry_run_plans_without_running(shared_copra, media_server, s3, webhooks):
    from conftest import s3_storage
    job = {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": s3_storage(s3, "/dry"),
        "notification": {"type": "http", "url": f"{webhooks.url}/dry-hook", "events": True},
        "outputs": {
            "mp4:360p": {"path": "/a.mp4"},
            "webm:240p": {"path": "/b.webm", "if": "{{ input.width }} >= 1280"},
            "mp4:1080p": {"path": "/c.mp4", "if": "{{ input.width }} >= 1920"},
            "jpg:200x": {"path": "/t.jpg"},
        },
    }
    before = requests.get(f"{shared_copra.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=5).text
    answer = requests.post(f"{shared_copra.url}/v2/jobs?dry_run=true", auth=(KEY_A, ""), json=job, timeout=60)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["dry_run"] is True and "id" not in plan
    assert plan["input"]["status"] == "input.transferred"
    video = next(s for s in plan["input"]["metadata"]["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (1280, 720)
    assert plan["storage"] == {"service": "s3", "valid": True}
    by_key = {o["key"]: o for o in plan["outputs"]}
    mp4 = by_key["mp4:360p"]
    assert mp4["status"] == "planned" and mp4["path"] == "/a.mp4"
    assert mp4["plan"]["container"] == "mp4" and mp4["plan"]["video"]["height"] == 360
    assert by_key["webm:240p"]["condition"] is True and by_key["webm:240p"]["plan"]["container"] == "webm"
    assert by_key["mp4:1080p"]["condition"] is False and by_key["mp4:1080p"]["status"] == "skipped"
    assert by_key["jpg:200x"]["plan"]["output_type"] == "image"

    # Nothing ran: no job counted, nothing stored, no webhook.
    after = requests.get(f"{shared_copra.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=5).text
    assert sum(metric_values(after, "copra_jobs").values()) == sum(metric_values(before, "copra_jobs").values())
    assert s3["client"].list_objects_v2(Bucket=s3["bucket"], Prefix="dry/").get("KeyCount", 0) == 0
    assert webhooks.received("/dry-hook") == []

    # The same 400s as a real submit.
    bad = requests.post(f"{shared_copra.url}/v2/jobs?dry_run=true", auth=(KEY_A, ""), json={**job, "outputs": {"nope:1": {"path": "/x"}}}, timeout=30)
    assert bad.status_code == 400 and bad.json()["status"] == "error", bad.text
    real = shared_copra.post_job({**job, "outputs": {"nope:1": {"path": "/x"}}})
    assert (real.status_code, real.json()["error_code"]) == (bad.status_code, bad.json()["error_code"])

    # An input that is not media: answered, not refused, as a real job would fail it.
    broken = requests.post(f"{shared_copra.url}/v2/jobs?dry_run=true", auth=(KEY_A, ""),
                           json={**job, "input": {"url": f"{media_server}/not-media.mp4"}}, timeout=30)
    assert broken.status_code == 200 and broken.json()["input"]["status"] == "input.failed", broken.text
    assert "not a media file" in broken.json()["input"]["error"]


def test_open_streams_do_not_hold_up_a_shutdown(tmp_path, media_server):
    import signal
    import threading
    server = Copra(tmp_path / "data").start()
    created = server.post_job(long_job(media_server))
    assert created.status_code == 201, created.text
    response = requests.get(f"{server.url}/v2/jobs/{created.json()['id']}/events", auth=(KEY_A, ""), stream=True, timeout=120)
    assert response.status_code == 200
    ended = threading.Event()

    def read():
        read_sse(response)
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    server.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert server.proc.wait(30) == 0
    assert time.monotonic() - started < 20, "the event stream held the server up"
    assert ended.wait(5), "the stream ended with the server"
    server.log.close()
