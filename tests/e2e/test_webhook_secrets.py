"""A webhook secret per API key. Each key's Standard Webhooks secret is derived from the
server's root secret (`COPRA_WEBHOOK_SECRET`), its namespace and a stored generation:
two keys get different secrets, the same on every node with the same root; a key reads
(`GET /v2/webhooks/secret`) and rotates (`POST /v2/webhooks/secret/rotate`) only its
own; its deliveries verify (with the `standardwebhooks` package) with its own secret
and with no other key's nor the root; after a rotation every delivery carries both
signatures (`v1,<new> v1,<old>`) for `webhook_secret_overlap_secs`, then the new one
only. The CLI (`copra webhooks secret [--rotate]`) and the dashboard show the caller's
secret. A secret the operator set for a key in the config file overrides the derived
one and is not rotated through the API."""

import base64
import json
import os
import subprocess
import uuid
from datetime import datetime, timezone

import pytest
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from conftest import COPRA_BIN, KEY_A, KEY_B, PG_SERVER, Copra, wait_until

ROOT = "whsec_" + base64.b64encode(os.urandom(32)).decode()
OVERLAP_SECS = 20


def verifies(secret, hook):
    try:
        Webhook(secret).verify(hook["raw"], hook["headers"])
        return True
    except WebhookVerificationError:
        return False


def secret_of(server, key):
    r = requests.get(f"{server.url}/v2/webhooks/secret", auth=(key, ""), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def rotate(server, key):
    r = requests.post(f"{server.url}/v2/webhooks/secret/rotate", auth=(key, ""), json={}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def light_job(media_server, url):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"},
            "outputs": {"jpg:160x": {"path": "/s.jpg"}},
            "notification": {"type": "http", "url": url, "events": False}}


def completed_hook(server, webhooks, media_server, key):
    """Run a job of `key` notifying its own path of the rig's receiver; its
    `job.completed` hook (raw body and headers)."""
    path = f"/secrets-{uuid.uuid4().hex[:8]}"
    created = server.post_job(light_job(media_server, f"{webhooks.url}{path}"), key=key)
    assert created.status_code == 201, created.text
    assert server.wait_job(created.json()["id"], key=key)["status"] == "job.completed"
    return webhooks.wait_for_raw(path, "job.completed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    copra = Copra(tmp_path_factory.mktemp("secrets") / "data",
                  {"COPRA_WEBHOOK_SECRET": ROOT, "COPRA_WEBHOOK_SECRET_OVERLAP_SECS": str(OVERLAP_SECS)}).start()
    yield copra
    copra.stop()


def test_each_key_has_its_own_secret_and_sees_only_it(server, tmp_path):
    a, b = secret_of(server, KEY_A), secret_of(server, KEY_B)
    for answer in (a, b):
        assert answer["secret"].startswith("whsec_") and len(base64.b64decode(answer["secret"][6:])) == 32
        assert answer["configured"] is False
    assert a["secret"] != b["secret"], "two keys, two secrets"
    assert ROOT not in (a["secret"], b["secret"]), "the root signs nothing itself"
    assert secret_of(server, KEY_A)["secret"] == a["secret"], "stable"
    # No way to name another tenant: whatever the request says, a key gets its own.
    for params in ({"key": KEY_B}, {"owner": KEY_B}, {"namespace": "x"}):
        r = requests.get(f"{server.url}/v2/webhooks/secret", params=params, auth=(KEY_A, ""), timeout=10)
        assert r.status_code == 200 and r.json()["secret"] == a["secret"], r.text
    for method, path in (("GET", "/v2/webhooks/secret"), ("POST", "/v2/webhooks/secret/rotate")):
        r = requests.request(method, f"{server.url}{path}", auth=("not-a-key", ""), json={}, timeout=10)
        assert r.status_code == 401 and r.json()["error_code"] == "authentication_failed", r.text
    # Another node with the same root (its own database here: no rotation yet) derives
    # the same secrets.
    other = Copra(tmp_path / "other", {"COPRA_WEBHOOK_SECRET": ROOT}).start()
    try:
        assert secret_of(other, KEY_A)["secret"] == a["secret"] and secret_of(other, KEY_B)["secret"] == b["secret"]
    finally:
        other.stop()
    # The operations are in the OpenAPI document.
    paths = requests.get(f"{server.url}/openapi.json", timeout=10).json()["paths"]
    assert "get" in paths["/v2/webhooks/secret"] and "post" in paths["/v2/webhooks/secret/rotate"]


def test_a_keys_deliveries_verify_with_its_secret_only(server, webhooks, media_server):
    a, b = secret_of(server, KEY_A)["secret"], secret_of(server, KEY_B)["secret"]
    hook_a = completed_hook(server, webhooks, media_server, KEY_A)
    hook_b = completed_hook(server, webhooks, media_server, KEY_B)
    assert len(hook_a["headers"]["webhook-signature"].split(" ")) == 1
    assert verifies(a, hook_a) and not verifies(b, hook_a) and not verifies(ROOT, hook_a)
    assert verifies(b, hook_b) and not verifies(a, hook_b) and not verifies(ROOT, hook_b)
    # B, holding its own secret, signs a `job.completed` of A's job pointing at B's URLs:
    # A's verifier refuses it (with one server-wide secret, it would have accepted it).
    body = json.loads(hook_a["raw"])
    body["data"] = {**body.get("data", {}), "outputs": [{"key": "jpg:160x", "url": "https://b.example/evil.jpg"}]}
    raw = json.dumps(body).encode()
    now = datetime.now(timezone.utc)
    forged_headers = {"webhook-id": "msg_forged", "webhook-timestamp": str(int(now.timestamp())),
                      "webhook-signature": Webhook(b).sign("msg_forged", now, raw.decode())}
    forged = {"raw": raw, "headers": forged_headers}
    assert verifies(b, forged), "the forgery is well made"
    assert not verifies(a, forged)


def test_after_a_rotation_deliveries_carry_both_signatures_for_the_overlap(server, webhooks, media_server):
    old = secret_of(server, KEY_A)["secret"]
    b = secret_of(server, KEY_B)["secret"]
    rotated = rotate(server, KEY_A)
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    assert rotated["rotated_at"] and rotated["previous_secret_expires_at"], rotated
    assert secret_of(server, KEY_A)["secret"] == new
    assert secret_of(server, KEY_B)["secret"] == b, "one key's rotation leaves the others alone"

    hook = completed_hook(server, webhooks, media_server, KEY_A)
    signatures = hook["headers"]["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures), signatures
    # A receiver with either secret accepts it; one with another key's does not.
    assert verifies(new, hook) and verifies(old, hook) and not verifies(b, hook)
    # Each signature is one secret's: the new one first.
    assert verifies(new, dict(hook, headers={**hook["headers"], "webhook-signature": signatures[0]}))
    assert verifies(old, dict(hook, headers={**hook["headers"], "webhook-signature": signatures[1]}))

    # After the overlap, the previous secret signs no more.
    wait_until(lambda: secret_of(server, KEY_A)["previous_secret_expires_at"] is None, OVERLAP_SECS + 10,
               "the overlap to end", interval=0.5)
    hook = completed_hook(server, webhooks, media_server, KEY_A)
    assert len(hook["headers"]["webhook-signature"].split(" ")) == 1
    assert verifies(new, hook) and not verifies(old, hook)


def test_nodes_sharing_a_postgres_database_agree_on_each_keys_secret(tmp_path, database, webhooks, media_server):
    """Two nodes, one PostgreSQL database, one root: a rotation on one node is the other
    node's secret at once, and the other node's deliveries carry both signatures."""
    shared = {"COPRA_DATABASE_URL": f"{PG_SERVER}/{database}", "COPRA_WEBHOOK_SECRET": ROOT,
              "COPRA_SECRET_KEY": os.urandom(32).hex()}
    one = Copra(tmp_path / "one", shared).start()
    two = Copra(tmp_path / "two", shared).start()
    try:
        before = secret_of(one, KEY_A)["secret"]
        assert secret_of(two, KEY_A)["secret"] == before
        rotated = rotate(two, KEY_A)["secret"]
        assert rotated != before and secret_of(one, KEY_A)["secret"] == rotated
        assert rotate(one, KEY_A)["secret"] not in (before, rotated), "each rotation a new generation"
        latest = secret_of(two, KEY_A)["secret"]
        assert secret_of(one, KEY_B)["secret"] == secret_of(two, KEY_B)["secret"]
        one.stop()
        # Only `two` runs now: it works the job and signs with the latest and the one before.
        hook = completed_hook(two, webhooks, media_server, KEY_A)
        assert len(hook["headers"]["webhook-signature"].split(" ")) == 2
        assert verifies(latest, hook) and verifies(rotated, hook) and not verifies(before, hook)
    finally:
        one.stop()
        two.stop()


def test_the_cli_prints_and_rotates_the_callers_secret(server):
    def cli(*args, key=KEY_B):
        done = subprocess.run([str(COPRA_BIN), "webhooks", "secret", *args, "--server", server.url, "--key", key],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done
    printed = cli().stdout.strip()
    assert printed == secret_of(server, KEY_B)["secret"], "the secret alone on standard output"
    rotated = cli("--rotate")
    new = rotated.stdout.strip()
    assert new.startswith("whsec_") and new != printed and new == secret_of(server, KEY_B)["secret"]
    assert "previous secret" in rotated.stderr, rotated.stderr
    # The key from the environment works too; a wrong key is an error naming the refusal.
    env = dict(os.environ, COPRA_API_KEY=KEY_A, COPRA_SERVER=server.url)
    done = subprocess.run([str(COPRA_BIN), "webhooks", "secret"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == secret_of(server, KEY_A)["secret"], done.stderr
    wrong = subprocess.run([str(COPRA_BIN), "webhooks", "secret", "--server", server.url, "--key", "nope"],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0 and "authentication_failed" in wrong.stderr, wrong.stderr


def test_a_configured_secret_overrides_the_derived_one(tmp_path, webhooks, media_server):
    configured = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    config = tmp_path / "copra.toml"
    config.write_text(f'[webhooks.secrets]\n"{KEY_B}" = "{configured}"\n')
    copra = Copra(tmp_path / "data", {"COPRA_CONFIG": str(config)}).start()
    try:
        answer = secret_of(copra, KEY_B)
        assert answer["secret"] == configured and answer["configured"] is True
        r = requests.post(f"{copra.url}/v2/webhooks/secret/rotate", auth=(KEY_B, ""), json={}, timeout=10)
        assert r.status_code == 400 and r.json()["error_code"] == "webhook_secret_configured", r.text
        assert "config" in r.json()["message"] and r.json()["status"] == "error"
        assert secret_of(copra, KEY_A)["configured"] is False, "other keys keep their derived secret"
        hook = completed_hook(copra, webhooks, media_server, KEY_B)
        assert verifies(configured, hook) and not verifies(secret_of(copra, KEY_A)["secret"], hook)
        # The root was generated into the data directory; it is not printed, and signs nothing.
        root = (copra.data_dir / "webhook-secret").read_text().strip()
        assert root.startswith("whsec_") and root not in copra.logs()
        assert "Webhook root secret generated into" in copra.logs()
        assert not verifies(root, hook)
    finally:
        copra.stop()


def test_the_dashboard_shows_and_rotates_the_callers_secret(server, tmp_path):
    from playwright import sync_api as playwright_api
    from test_dashboard import CHROMIUM, Shots, csp_violations, open_page

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing (scripts/setup.sh --tests installs Debian's chromium)"
    shots = Shots(tmp_path)
    problems = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = open_page(browser, f"{server.url}/", problems)
            page.get_by_label("API key").fill(KEY_A)
            page.get_by_role("button", name="Log in").click()
            playwright_api.expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
            page.get_by_role("link", name="Webhooks").click()
            playwright_api.expect(page.get_by_role("heading", name="Webhook signing secret")).to_be_visible()
            field = page.locator("#webhook-secret")
            mine = secret_of(server, KEY_A)["secret"]
            playwright_api.expect(field).to_have_value(mine)
            assert field.get_attribute("type") == "password", "hidden until asked for"
            page.get_by_role("button", name="Show").click()
            assert field.get_attribute("type") == "text"
            assert secret_of(server, KEY_B)["secret"] not in page.content()
            shots(page, "webhook-secret")

            rotate_button = page.get_by_role("button", name="Rotate secret")
            rotate_button.click()
            confirm = page.get_by_role("button", name="Confirm rotation")
            confirm.click()
            playwright_api.expect(page.get_by_role("status")).to_contain_text("new secret")
            playwright_api.expect(field).not_to_have_value(mine)
            now = secret_of(server, KEY_A)["secret"]
            playwright_api.expect(field).to_have_value(now)
            playwright_api.expect(page.locator("#webhook-secret-state")).to_contain_text("previous secret also signs")
            shots(page, "webhook-secret-rotated")
            assert csp_violations(problems) == [], problems
        finally:
            browser.close()


def test_no_secret_reaches_the_log(server):
    """Nothing the server logged holds the root or any key's secret."""
    logs = server.logs()
    assert ROOT[6:] not in logs
    for key in (KEY_A, KEY_B):
        assert secret_of(server, key)["secret"][6:] not in logs
