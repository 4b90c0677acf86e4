"""The example notifiers of examples/plugins, built from the repo and loaded like any
third-party plugin: a Slack-style message, and a webhook signed with a granted secret."""

import hashlib
import hmac
import json

import pytest

from conftest import ROOT, copra_with_plugins

EXAMPLES = ROOT / "tests" / "plugins" / "dist"
SECRET = "granted-signing-secret"


@pytest.fixture()
def notifier_copra(tmp_path):
    plugins = ["storage-s3", "format-video", EXAMPLES / "slack-notifier.wasm", EXAMPLES / "hmac-notifier.wasm"]
    # Third-party notifiers reach only hosts the operator grants (here: the loopback
    # webhook receiver, any port).
    config = (f'[plugins.hmac-notifier]\nenv = {{ WEBHOOK_SECRET = "{SECRET}" }}\nallowed_hosts = ["127.0.0.1:*"]\n'
              '[plugins.slack-notifier]\nallowed_hosts = ["127.0.0.1:*"]\n')
    server = copra_with_plugins(tmp_path, plugins, config)
    yield server
    server.stop()


def job(media_server, notification):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"},
            "notification": notification, "outputs": {"mp4:240p": {"path": "n.mp4"}}}


def test_slack_message(notifier_copra, media_server, webhooks):
    created = notifier_copra.post_job(job(media_server, {"type": "slack", "url": f"{webhooks.url}/slack", "channel": "#video"}))
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert notifier_copra.wait_job(job_id)["status"] == "job.completed"
    body = webhooks.wait_for_any("/slack")
    assert body["channel"] == "#video"
    assert f"Copra job {job_id}" in body["text"] and "completed" in body["text"]
    assert "mp4:240p: video.encoded <http://" in body["text"]


def test_signed_webhook(notifier_copra, media_server, webhooks):
    created = notifier_copra.post_job(job(media_server, {"type": "signed-http", "url": f"{webhooks.url}/signed"}))
    assert created.status_code == 201, created.text
    assert notifier_copra.wait_job(created.json()["id"])["status"] == "job.completed"
    hook = webhooks.wait_for_raw("/signed", "job.completed")
    expected = "sha256=" + hmac.new(SECRET.encode(), hook["raw"], hashlib.sha256).hexdigest()
    assert hook["headers"]["x-copra-signature"] == expected
    assert json.loads(hook["raw"])["data"]["status"] == "job.completed"


def test_bad_notification_config_is_400(notifier_copra, media_server):
    r = notifier_copra.post_job(job(media_server, {"type": "slack"}))
    assert r.status_code == 400 and r.json()["error_code"] == "notification_not_valid", r.text
    assert "url" in r.json()["message"]


def test_a_host_not_granted_is_400(notifier_copra, media_server, webhooks):
    port = webhooks.url.rsplit(":", 1)[1]
    r = notifier_copra.post_job(job(media_server, {"type": "slack", "url": f"http://localhost:{port}/slack-refused"}))
    assert r.status_code == 400 and r.json()["error_code"] == "notification_not_valid", r.text
    assert "slack-notifier" in r.json()["message"] and "allowed_hosts" in r.json()["message"], r.text
    assert webhooks.received("/slack-refused") == []
