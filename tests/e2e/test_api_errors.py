"""Every way a request can be wrong answers in Coconut's error shape with a fitting code."""

import pytest
import requests

from conftest import KEY_A, KEY_B, s3_storage


def good_job(media_server, s3):
    return {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": s3_storage(s3),
        "outputs": {"mp4:360p": {"path": "/e.mp4"}},
    }


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and len(body["message"]) > 10
    return body


@pytest.mark.parametrize("route", ["/v2/jobs/abc", "/v2/metadata/jobs/abc", "/v2/metadata/jobs/abc/source", "/files/x.mp4"])
def test_every_route_needs_a_key(shared_copra, route):
    assert_error(requests.get(shared_copra.url + route, timeout=10), 401, "authentication_failed")
    assert_error(requests.get(shared_copra.url + route, auth=("wrong-key", ""), timeout=10), 401, "authentication_failed")


def test_post_needs_a_key(shared_copra, media_server, s3):
    r = requests.post(f"{shared_copra.url}/v2/jobs", json=good_job(media_server, s3), timeout=10)
    assert_error(r, 401, "authentication_failed")
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_one_key_never_sees_another_keys_job(shared_copra, media_server, s3):
    created = shared_copra.post_job(good_job(media_server, s3), key=KEY_A)
    assert created.status_code == 201
    job_id = created.json()["id"]
    assert shared_copra.get_job(job_id, key=KEY_A).status_code == 200
    assert_error(shared_copra.get_job(job_id, key=KEY_B), 404, "job_not_found")
    r = requests.get(f"{shared_copra.url}/v2/metadata/jobs/{job_id}", auth=(KEY_B, ""), timeout=10)
    assert_error(r, 404, "job_not_found")


def test_malformed_json(shared_copra):
    r = requests.post(f"{shared_copra.url}/v2/jobs", auth=(KEY_A, ""), data="{not json", timeout=10,
                      headers={"Content-Type": "application/json"})
    assert_error(r, 400, "request_not_valid")


def mutate(media_server, s3, change):
    job = good_job(media_server, s3)
    change(job)
    return job


CASES = [
    ("unknown output param", lambda j: j["outputs"]["mp4:360p"].update(bogus=1), "output_param_not_valid", "bogus"),
    ("missing credentials", lambda j: j["storage"].pop("credentials"), "storage_credentials_not_valid", "access_key_id"),
    ("unknown storage service", lambda j: j["storage"].update(service="nosuchcloud"), "storage_not_valid", "nosuchcloud"),
    ("no input", lambda j: j.pop("input"), "input_not_valid", "input"),
    ("input not http", lambda j: j["input"].update(url="file:///etc/passwd"), "input_not_valid", "http"),
    ("notification url", lambda j: j.update(notification={"type": "http", "url": "not a url"}), "notification_not_valid", "url"),
    ("notification type", lambda j: j.update(notification={"type": "carrier-pigeon", "url": "http://x"}), "notification_not_valid", "carrier-pigeon"),
    ("unknown container", lambda j: j.update(outputs={"xyz:720p": {"path": "/a"}}), "format_not_valid", "xyz"),
    ("unknown format part", lambda j: j.update(outputs={"mp4:720p_sparkly": {"path": "/a"}}), "format_not_valid", "sparkly"),
    ("bad quality", lambda j: j.update(outputs={"mp4:720p::quality=9": {"path": "/a"}}), "format_not_valid", "quality"),
    ("bad condition", lambda j: j["outputs"]["mp4:360p"].update({"if": "{{ input.width }} >>= 3"}), "condition_not_valid", "mp4:360p"),
    ("unknown condition variable", lambda j: j["outputs"]["mp4:360p"].update({"if": "{{ input.colour }} = 1"}), "condition_not_valid", "colour"),
    ("path escapes storage", lambda j: j["outputs"]["mp4:360p"].update(path="/../../etc/x.mp4"), "storage_path_not_valid", ".."),
    ("no outputs", lambda j: j.update(outputs={}), "outputs_not_valid", "output"),
    ("unknown job field", lambda j: j.update(sparkle=True), "request_not_valid", "sparkle"),
]


@pytest.mark.parametrize("name,change,code,mention", CASES, ids=[c[0] for c in CASES])
def test_invalid_jobs_are_400_with_a_code(shared_copra, media_server, s3, name, change, code, mention):
    r = shared_copra.post_job(mutate(media_server, s3, change))
    body = assert_error(r, 400, code)
    assert mention.lower() in body["message"].lower(), body["message"]


def test_unknown_route_is_404_in_error_shape(shared_copra):
    assert_error(requests.get(f"{shared_copra.url}/v2/nothing", auth=(KEY_A, ""), timeout=10), 404, "not_found")
