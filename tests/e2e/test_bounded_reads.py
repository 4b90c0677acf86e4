"""Far servers that never stop answering, and dry runs with a cost ceiling, black-box.

Each endless peer (an identity service, an S3 endpoint, a webhook receiver, an input
server) is on loopback, allowed by COPRA_OUTBOUND_ALLOW; each case must end with a clear
error naming the limit within two minutes while the server's resident memory stays
bounded (sampled from /proc/<pid>/status during the case). Dry runs read a bounded part
of an input (counted by the serving test server), still probe an MP4 whose index is at
its end, and past `dry_run_per_tenant` / `dry_run_concurrency` get 429 with Retry-After."""

import threading
import time
import uuid

import pytest
import requests

from conftest import KEY_A, KEY_B, S3_ACCESS, S3_SECRET, Copra, wait_until
from peers import BigMedia, Endless, RssSampler, moov_at_end_mp4

KEY_C = "key-c-" + uuid.uuid4().hex[:8]
MIB = 1 << 20
RSS_BOUND = 500 * MIB
MAX_INPUT = 64 * MIB
PROBE_BYTES = 4 * MIB


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("bounded")
    config = root / "copra.toml"
    # One attempt per event in the time of a test: the first failure is what is looked at.
    config.write_text("[webhooks]\nretry_schedule_secs = [600]\n")
    copra = Copra(root / "data", {
        "COPRA_CONFIG": str(config),
        "COPRA_API_KEYS": f"{KEY_A},{KEY_B},{KEY_C}",
        "COPRA_LIMITS_MAX_INPUT_BYTES": str(MAX_INPUT),
        "COPRA_LIMITS_DRY_RUN_PROBE_BYTES": str(PROBE_BYTES),
        "COPRA_LIMITS_DRY_RUN_CONCURRENCY": "2",
        "COPRA_LIMITS_DRY_RUN_PER_TENANT": "1",
    }).start()
    yield copra
    copra.stop()


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 60 MiB MP4 (under max_input_bytes, 15 times the dry run's window) with its
    moov at the end, served virtually with ranges."""
    head, tail, size = moov_at_end_mp4(tmp_path_factory.mktemp("big"), 60 * MIB)
    media = BigMedia(head, tail, size)
    yield media
    media.close()


def dry_run(server, job, key=KEY_A):
    return requests.post(f"{server.url}/v2/jobs", params={"dry_run": "true"}, auth=(key, ""), json=job, timeout=150)


def local_job(input_url, **extra):
    return {"input": {"url": input_url}, "storage": {"service": "local", "path": "/bounded"},
            "outputs": {"mp4:240p": {"path": "/o.mp4"}}, **extra}


def bounded(server, case):
    """Run `case` while sampling the server's memory; returns its result and checks the
    two-minute and memory bounds."""
    started = time.monotonic()
    with RssSampler(server.proc.pid) as rss:
        result = case()
    took = time.monotonic() - started
    assert took < 120, f"took {took:.0f} s"
    assert rss.samples > 0 and rss.peak < RSS_BOUND, f"the server's RSS reached {rss.peak / MIB:.0f} MiB"
    print(f"{took:.1f} s, peak RSS {rss.peak / MIB:.0f} MiB")
    return result


# --- endless bodies ---

def test_an_endless_swift_sign_in_ends_a_dry_run_with_a_clear_error(server, media_server):
    identity = Endless(prefix=b'{"access": {"token": {"id": "', filler=b"a" * 65536)
    try:
        storage = {"service": "rackspace", "region": "DFW", "container": "c", "path": "/x",
                   "auth_url": f"{identity.url}/v2.0", "credentials": {"username": "u", "api_key": "k"}}
        answer = bounded(server, lambda: dry_run(server, local_job(f"{media_server}/input.mp4", storage=storage)))
        assert answer.status_code == 200, answer.text
        plan = answer.json()
        assert plan["storage"]["valid"] is False, plan
        error = plan["storage"]["error"]
        assert "sign-in" in error and "1048576 bytes" in error, error
        assert identity.requests == [("POST", "/v2.0/tokens")]
        assert identity.sent < 256 * MIB, f"the identity service sent {identity.sent} bytes before it was cut off"
    finally:
        identity.close()


def test_an_s3_endpoint_answering_endlessly_fails_the_output(server, media_server):
    s3 = Endless(status=500, content_type="application/xml",
                 prefix=b"<?xml version='1.0'?><Error><Code>InternalError</Code><Message>", filler=b"y" * 65536)
    try:
        storage = {"service": "s3", "region": "us-east-1", "bucket": "b", "path": "/out", "endpoint": s3.url,
                   "force_path_style": True, "credentials": {"access_key_id": S3_ACCESS, "secret_access_key": S3_SECRET}}

        def run():
            created = server.post_job(local_job(f"{media_server}/input.mp4", storage=storage))
            assert created.status_code == 201, created.text
            return server.wait_job(created.json()["id"], timeout=115)

        final = bounded(server, run)
        assert final["status"] == "job.failed", final
        output = final["outputs"][0]
        assert output["status"].endswith(".failed") and "500" in output["error"], output
        assert len(output["error"]) < 16000, "the error body is cut, not copied whole"
        assert s3.requests, "the endpoint was reached"
    finally:
        s3.close()


def test_a_webhook_receiver_answering_endlessly_is_cut_and_its_first_words_logged(server, media_server):
    receiver = Endless(status=500, prefix=b'{"error": "down for maintenance"}\nFORGED 2026 INFO line\n', filler=b"z" * 65536)
    try:
        def run():
            created = server.post_job(local_job(f"{media_server}/input.mp4",
                                                notification={"type": "http", "url": f"{receiver.url}/hook"}))
            assert created.status_code == 201, created.text
            job_id = created.json()["id"]
            final = server.wait_job(job_id, timeout=100)

            def first_attempt():
                r = requests.get(f"{server.url}/v2/jobs/{job_id}/webhooks", auth=(KEY_A, ""), timeout=10)
                events = {e["event"]: e for e in r.json()["events"]}
                entry = events.get("job.completed")
                return entry and entry["attempts"] and entry["attempts"][0]
            return final, wait_until(first_attempt, 60, "the failed delivery of job.completed in the log")

        final, attempt = bounded(server, run)
        assert final["status"] == "job.completed", final
        error = attempt["error"]
        assert "500" in error and '{"error": "down for maintenance"}' in error, error
        assert "\n" not in error and "\\nFORGED" in error, "the answer is escaped"
        assert len(error) < 1000, error
        assert receiver.sent < 64 * MIB
    finally:
        receiver.close()


def test_an_endless_input_stops_at_max_input_bytes(server):
    source = Endless(content_type="video/mp4")
    try:
        def run():
            created = server.post_job(local_job(f"{source.url}/in.mp4"))
            assert created.status_code == 201, created.text
            return server.wait_job(created.json()["id"], timeout=115)

        final = bounded(server, run)
        assert final["status"] == "job.failed" and final["input"]["status"] == "input.failed", final
        assert "max_input_bytes" in final["input"]["error"] and str(MAX_INPUT) in final["input"]["error"], final
        assert source.sent < MAX_INPUT + 64 * MIB
    finally:
        source.close()


# --- dry runs with a cost ceiling ---

def test_a_dry_run_reads_a_bounded_part_of_a_large_input_and_probes_a_moov_at_the_end(server, big):
    big.ranges, big.served = True, 0
    answer = dry_run(server, local_job(big.url))
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["input"]["status"] == "input.transferred", plan
    video = [s for s in plan["input"]["metadata"]["streams"] if s["codec_type"] == "video"][0]
    assert (video["width"], video["height"]) == (320, 240), video
    assert plan["outputs"][0]["status"] == "planned", plan
    assert big.size > 60 * MIB
    assert big.served <= PROBE_BYTES, f"{big.served} bytes of a {big.size}-byte input were read"


def test_a_server_that_ignores_ranges_is_read_from_its_first_bytes_only(server, big):
    big.ranges, big.served = False, 0
    try:
        answer = dry_run(server, local_job(big.url))
    finally:
        big.ranges = True
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["input"]["status"] == "input.failed", plan
    assert "ranged requests" in plan["input"]["error"] and "dry_run_probe_bytes" in plan["input"]["error"], plan
    # The window, plus what the sockets' buffers took before the connection was dropped.
    assert big.served < PROBE_BYTES + 32 * MIB, f"{big.served} bytes were read"


def test_dry_runs_beyond_the_caps_get_429_with_retry_after(server, tmp_path):
    head, tail, size = moov_at_end_mp4(tmp_path, 8 * MIB)
    slow = BigMedia(head, tail, size, delay=2.0)
    answers = {}

    def run(name, key):
        answers[name] = dry_run(server, local_job(slow.url), key=key)

    def start(name, key):
        thread = threading.Thread(target=run, args=(name, key))
        thread.start()
        return thread

    try:
        first = start("a1", KEY_A)
        time.sleep(0.5)
        run("a2", KEY_A)
        second = start("b1", KEY_B)
        time.sleep(0.5)
        run("c1", KEY_C)
        first.join(60)
        second.join(60)
    finally:
        slow.close()
    assert answers["a1"].status_code == 200 and answers["b1"].status_code == 200, (answers["a1"].text, answers["b1"].text)
    for name, setting in (("a2", "dry_run_per_tenant"), ("c1", "dry_run_concurrency")):
        busy = answers[name]
        assert busy.status_code == 429, busy.text
        body = busy.json()
        assert body["status"] == "error" and body["error_code"] == "too_many_dry_runs" and setting in body["message"], body
        assert int(busy.headers["Retry-After"]) > 0
    # The places are given back.
    again = dry_run(server, {"input": {"url": "http://127.0.0.1:9/none.mp4"}, "storage": {"service": "local"},
                             "outputs": {"mp4:240p": {"path": "/o.mp4"}}}, key=KEY_C)
    assert again.status_code == 200, again.text
