"""The OpenAPI document (`GET /openapi.json`) against the live server.

`schemathesis` (its `st` command, as CI would run it) generates a few thousand requests
from the document, valid and invalid, for every operation: with a tenant's key for the
job APIs, with the admin key for `/admin` and `/metrics`. It passes when no answer is a
5xx and every answer matches the document (status code, content type, headers, body
schema), invalid requests are refused and unauthenticated ones answered 401.

Generated jobs name random hosts: the outbound policy and the resolver refuse them fast,
and a job that is queued fails at its input. Then the answers about a real, completed
job (which generated requests never find) are checked against the document too."""

import subprocess
import sys
from pathlib import Path

import pytest
import requests
import schemathesis

from conftest import ADMIN_KEY, KEY_A, copra_with_plugins

ST = Path(sys.executable).parent / "st"
# The admin run removes plugins (it follows GET /admin/plugins to DELETE): every server
# here has its own copy of them.
PLUGINS = ["format-video", "storage-s3", "notifier-http", "condition-expr"]
# Per operation and phase; about 19 operations make a few thousand requests in all.
MAX_EXAMPLES = 100


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    copra = copra_with_plugins(tmp_path_factory.mktemp("contract"), PLUGINS)
    yield copra
    copra.stop()


@pytest.fixture()
def admin_server(tmp_path):
    copra = copra_with_plugins(tmp_path, PLUGINS)
    yield copra
    copra.stop()


# tus answers a request without `Tus-Resumable: 1.0.0` with 412, as its protocol says:
# a refusal of invalid data (or of a missing header) like the 4xx schemathesis expects.
ST_CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "412", "415", "422", "428", "429", "5xx"]

[checks.missing_required_header]
expected-statuses = ["400", "401", "403", "406", "412", "415", "422"]
"""


def st(server, report, *args):
    config = report.parent / "schemathesis.toml"
    config.write_text(ST_CONFIG)
    command = [str(ST), "--config-file", str(config), "run", f"{server.url}/openapi.json", "--checks", "all",
               # A schema-valid job can still name a format no plugin has: such a job is
               # refused with 400, as documented, so valid-looking data may be refused.
               "--exclude-checks", "positive_data_acceptance",
               "--max-examples", str(MAX_EXAMPLES), "--workers", "2", "--seed", "13",
               "--request-timeout", "20", "--generation-deterministic", "--no-color",
               "--report", "ndjson", "--report-ndjson-path", str(report), *args]
    # Run in the report's directory: schemathesis keeps its example database in the cwd.
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=report.parent)


def requests_made(report: Path) -> int:
    """How many requests the run sent, from its ndjson report."""
    count = 0
    for line in report.read_text().splitlines():
        count += line.count('"request":')
    return count


def test_the_document_is_served_without_auth_and_names_every_api(server):
    r = requests.get(f"{server.url}/openapi.json", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    for path in ["/v2/jobs", "/v2/jobs/{jobId}", "/v2/metadata/jobs/{jobId}", "/v2/metadata/jobs/{jobId}/{key}",
                 "/v0/jobs/create", "/admin/plugins", "/openapi.json"]:
        assert path in doc["paths"], path
    assert doc["components"]["securitySchemes"]["basicAuth"] == {
        "type": "http", "scheme": "basic",
        "description": "HTTP Basic authentication. Use the API key as the username and leave the password blank."}


def test_schemathesis_finds_no_server_error_and_no_mismatch(server, admin_server, tmp_path):
    runs = [
        # Creating an upload and appending to it carry tus's headers and raw bytes, which
        # schemathesis cannot generate meaningfully (and any extra header is accepted, as
        # HTTP allows); test_uploads.py drives them with real tus clients.
        ("tenant", server, ["--auth", f"{KEY_A}:", "--exclude-path-regex", "^/(admin|metrics)",
                            "--exclude-operation-id", "createUpload", "--exclude-operation-id", "appendUpload"]),
        ("admin", admin_server, ["--header", f"Authorization: Bearer {ADMIN_KEY}", "--include-path-regex", "^/(admin|metrics)"]),
    ]
    total = 0
    for name, target, args in runs:
        report = tmp_path / f"{name}.ndjson"
        done = st(target, report, *args)
        assert done.returncode == 0, f"schemathesis ({name}) found problems:\n{done.stdout[-12000:]}\n{done.stderr[-3000:]}"
        assert report.exists()
        total += requests_made(report)
    assert total >= 2000, f"only {total} requests were generated"
    assert "panicked" not in server.logs() + admin_server.logs()
    print(f"schemathesis sent {total} requests")


def test_answers_about_a_real_job_match_the_document(server, media_server):
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local", "path": "/contract"},
           "outputs": {"mp4:240p": {"path": "a.mp4"}, "jpg:160x": {"path": "t_#num#.jpg", "number": 2}},
           "notification": {"type": "http", "url": "http://127.0.0.1:9/hook", "events": True, "progress_interval": 1}}
    auth = (KEY_A, "")
    created = requests.post(f"{server.url}/v2/jobs", auth=auth, json=job, timeout=30)
    schema["/v2/jobs"]["POST"].validate_response(created)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    planned = requests.post(f"{server.url}/v2/jobs?dry_run=true", auth=auth, json=job, timeout=60)
    assert planned.status_code == 200, planned.text
    schema["/v2/jobs"]["POST"].validate_response(planned)
    done = server.wait_job(job_id)
    assert done["status"] == "job.completed", done

    checks = [
        ("/v2/jobs/{jobId}", "GET", f"/v2/jobs/{job_id}", auth),
        ("/v2/jobs", "GET", "/v2/jobs?limit=5", auth),
        ("/v2/metadata/jobs/{jobId}", "GET", f"/v2/metadata/jobs/{job_id}", auth),
        ("/v2/metadata/jobs/{jobId}/{key}", "GET", f"/v2/metadata/jobs/{job_id}/source", auth),
        ("/v2/metadata/jobs/{jobId}/{key}", "GET", f"/v2/metadata/jobs/{job_id}/mp4:240p", auth),
        ("/v2/jobs/{jobId}/webhooks", "GET", f"/v2/jobs/{job_id}/webhooks", auth),
        ("/v2/jobs/{jobId}", "GET", "/v2/jobs/nope", auth),
        ("/v0/jobs/{jobId}", "GET", f"/v0/jobs/{job_id}", auth),
        ("/healthz", "GET", "/healthz", None),
        ("/readyz", "GET", "/readyz", None),
    ]
    for path, method, url, key in checks:
        r = requests.get(f"{server.url}{url}", auth=key, timeout=10)
        assert r.status_code < 500, (url, r.text)
        schema[path][method].validate_response(r)
    shown = requests.get(f"{server.url}/v2/jobs/{job_id}", auth=auth, timeout=10).json()
    assert {o["key"] for o in shown["outputs"]} == {"mp4:240p", "jpg:160x"} and shown["completed_at"]

    log = requests.get(f"{server.url}/v2/jobs/{job_id}/webhooks", auth=auth, timeout=10).json()
    event_id = log["events"][0]["id"]
    redelivered = requests.post(f"{server.url}/v2/jobs/{job_id}/webhooks/{event_id}/redeliver", auth=auth, timeout=10)
    assert redelivered.status_code == 202, redelivered.text
    schema["/v2/jobs/{jobId}/webhooks/{eventId}/redeliver"]["POST"].validate_response(redelivered)

    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    for path, url in [("/admin/plugins", "/admin/plugins"), ("/admin/jobs/{jobId}/events", f"/admin/jobs/{job_id}/events")]:
        r = requests.get(f"{server.url}{url}", headers=admin, timeout=10)
        assert r.status_code == 200, r.text
        schema[path]["GET"].validate_response(r)
