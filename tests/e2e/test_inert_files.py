"""`/files` serves a tenant's files inert on the dashboard's origin, and requests that
change something come from API clients or from this server's own pages, black-box.

A `local` output named `/p.html` or `/p.svg` is an attachment of no particular type,
never a page; media and pictures keep their types; every answer is `nosniff` and
sandboxed. A POST of a type an HTML form can send (`text/plain`) is a 415, one from
another origin a 403, each in the API's error shape; JSON from the same origin, and
the existing clients (no `Origin`), go through."""

import json

import pytest
import requests

from conftest import ADMIN_KEY, KEY_A, KEY_B, Copra


def assert_error(response, status, code):
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["status"] == "error" and body["error_code"] == code, body
    return body


@pytest.fixture(scope="module")
def files(shared_copra, media_server):
    """The URLs of one job's `local` outputs, by name."""
    job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local", "path": "/inert"},
           "outputs": {"mp4:240p": {"path": "/p.html"}, "mp4:360p": {"path": "/p.svg"},
                       "mp4:480p": {"path": "/v.mp4"}, "jpg:160x": {"path": "/t_%.2d.jpg", "number": 1}}}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"], timeout=180)
    assert final["status"] == "job.completed", final
    urls = {}
    for output in final["outputs"]:
        for url in [output.get("url")] + [u if isinstance(u, str) else u["url"] for u in output.get("urls") or []]:
            if url:
                urls[url.rsplit("/", 1)[1]] = url
    return urls


def inert(response):
    assert response.headers["X-Content-Type-Options"] == "nosniff", response.headers
    assert response.headers["Content-Security-Policy"] == "sandbox", response.headers


@pytest.mark.parametrize("name", ["p.html", "p.svg"])
def test_an_active_type_is_served_as_an_attachment(files, name):
    response = requests.get(files[name], auth=(KEY_A, ""), timeout=10)
    assert response.status_code == 200, response.text
    inert(response)
    assert response.headers["Content-Type"] == "application/octet-stream", response.headers
    assert response.headers["Content-Disposition"] == "attachment", response.headers
    assert response.content[4:8] == b"ftyp", "the file itself, untouched"


def test_media_and_pictures_keep_their_types_and_every_answer_is_inert(files):
    video = requests.get(files["v.mp4"], auth=(KEY_A, ""), timeout=10)
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4", video.headers
    assert "Content-Disposition" not in video.headers
    inert(video)
    ranged = requests.get(files["v.mp4"], auth=(KEY_A, ""), headers={"Range": "bytes=0-9"}, timeout=10)
    assert ranged.status_code == 206 and len(ranged.content) == 10
    inert(ranged)
    picture = requests.get(files["t_01.jpg"], auth=(KEY_A, ""), timeout=10)
    assert picture.status_code == 200 and picture.headers["Content-Type"] == "image/jpeg", picture.headers
    inert(picture)
    # Another tenant's file is a 404, inert too.
    other = requests.get(files["p.html"], auth=(KEY_B, ""), timeout=10)
    assert_error(other, 404, "file_not_found")
    inert(other)


# --- requests that change something ---

def jobs_of(server, key=KEY_A):
    return {j["id"] for j in requests.get(f"{server.url}/v2/jobs", auth=(key, ""), params={"limit": 100}, timeout=10).json()["jobs"]}


def small_job(media_server):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local", "path": "/origin"},
            "outputs": {"mp4:240p": {"path": "/o.mp4"}}}


def test_a_cross_origin_or_form_typed_post_is_refused(shared_copra, media_server):
    before = jobs_of(shared_copra)
    body = json.dumps(small_job(media_server))
    url = f"{shared_copra.url}/v2/jobs"
    evil = requests.post(url, data=body, auth=(KEY_A, ""), timeout=10,
                         headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
    error = assert_error(evil, 403, "origin_not_allowed")
    assert "evil.example" in error["message"] and "allowed_origins" in error["message"], error
    json_from_elsewhere = requests.post(url, data=body, auth=(KEY_A, ""), timeout=10,
                                        headers={"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"})
    assert_error(json_from_elsewhere, 403, "origin_not_allowed")
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        typed = requests.post(url, data=body, auth=(KEY_A, ""), headers={"Content-Type": content_type}, timeout=10)
        error = assert_error(typed, 415, "unsupported_media_type")
        assert "application/json" in error["message"], error
    # Octet's API answers in its own shape.
    octet = requests.post(f"{shared_copra.url}/v0/jobs/create", data=body, headers={"Content-Type": "text/plain", "Authorization": f"Bearer {KEY_A}"}, timeout=10)
    assert octet.status_code == 415 and "application/json" in octet.json()["error"], octet.text
    # A DELETE from another page is refused before the admin key is even looked at.
    admin = requests.delete(f"{shared_copra.url}/admin/plugins/format-video", headers={"Authorization": f"Bearer {ADMIN_KEY}", "Origin": "https://evil.example"}, timeout=10)
    assert_error(admin, 403, "origin_not_allowed")
    assert "format-video" in {p["name"] for p in shared_copra.plugin_listing()["plugins"]}
    assert jobs_of(shared_copra) == before, "a refused request created a job"


def test_same_origin_json_and_existing_clients_go_through(shared_copra, media_server):
    url = f"{shared_copra.url}/v2/jobs"
    same = requests.post(url, json=small_job(media_server), auth=(KEY_A, ""), headers={"Origin": shared_copra.url}, timeout=30)
    assert same.status_code == 201, same.text
    # Scripts and SDKs: JSON without an Origin, and raw bytes without a type.
    assert shared_copra.post_job(small_job(media_server)).status_code == 201
    raw = requests.post(url, data=json.dumps(small_job(media_server)).encode(), auth=(KEY_A, ""), timeout=30)
    assert raw.status_code == 201, raw.text
    assert "Content-Type" not in raw.request.headers
    # A bodiless POST (redelivery) needs no type.
    job_id = same.json()["id"]
    shared_copra.wait_job(job_id)
    redeliver = requests.post(f"{url}/{job_id}/webhooks/0/redeliver", auth=(KEY_A, ""), headers={"Content-Type": "text/plain"}, timeout=10)
    assert redeliver.status_code != 415, redeliver.text


def test_an_operator_allows_a_dashboard_served_elsewhere(tmp_path):
    server = Copra(tmp_path / "data", {"COPRA_ALLOWED_ORIGINS": "https://dash.example.com/"}).start()
    try:
        def post(origin):
            return requests.post(f"{server.url}/v2/jobs", json={}, auth=(KEY_A, ""), headers={"Origin": origin}, timeout=10)
        # Past the guard, the empty job is refused for what it is.
        assert post("https://dash.example.com").status_code == 400
        assert post("https://DASH.example.com:443").status_code == 400, "origins compare as origins"
        assert_error(post("https://other.example.com"), 403, "origin_not_allowed")
    finally:
        server.stop()
