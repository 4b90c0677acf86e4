"""Nothing leaks, black-box: a refusal names the address's class and the setting but
not the address a host name resolved to (the operator's log has it), and no URL query
(a presigned signature) or storage secret reaches the log."""

import ipaddress
import socket
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from conftest import KEY_A, S3_SECRET, Copra, s3_storage, wait_until


@pytest.fixture(scope="module")
def loopback_name():
    """A host name this machine resolves to a loopback address (not `localhost`, which
    the policy refuses by name): its own name, or one added to /etc/hosts for the test."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
        if ipaddress.ip_address(address).is_loopback and not name.lower().endswith("localhost"):
            yield name, address
            return
    except OSError:
        pass
    hosts = Path("/etc/hosts")
    name, address = f"copra-rebind-{uuid.uuid4().hex[:8]}.test", "127.0.0.77"
    line = f"{address} {name}\n"
    try:
        with hosts.open("a") as f:
            f.write(line)
    except OSError:
        pytest.skip("no host name resolves to loopback here, and /etc/hosts cannot be written")
    try:
        yield name, address
    finally:
        hosts.write_text(hosts.read_text().replace(line, ""))


@pytest.fixture(scope="module")
def refusing(tmp_path_factory):
    """A server whose policy allows 127.0.0.2 only: loopback names are refused."""
    server = Copra(tmp_path_factory.mktemp("leaks") / "data", {"COPRA_OUTBOUND_ALLOW": "127.0.0.2/32"}).start()
    yield server
    server.stop()


def test_a_dry_run_of_a_name_resolving_to_loopback_does_not_tell_the_address(refusing, loopback_name):
    name, address = loopback_name
    job = {"input": {"url": f"http://{name}:9/input.mp4"}, "storage": {"service": "local"},
           "outputs": {"mp4:240p": {"path": "/o.mp4"}}}
    answer = requests.post(f"{refusing.url}/v2/jobs", params={"dry_run": "true"}, auth=(KEY_A, ""), json=job, timeout=60)
    assert answer.status_code in (200, 400), answer.text
    assert address not in answer.text, f"the answer tells {address}: {answer.text}"
    message = answer.json()["input"]["error"] if answer.status_code == 200 else answer.json()["message"]
    assert name in message and "loopback" in message and "COPRA_OUTBOUND_ALLOW" in message, message
    # The operator's log has the address.
    wait_until(lambda: address in refusing.logs(), 10, "the refused address in the server's log")
    # An address the user wrote may be echoed.
    job["input"]["url"] = "http://127.0.0.1:9/input.mp4"
    written = requests.post(f"{refusing.url}/v2/jobs", params={"dry_run": "true"}, auth=(KEY_A, ""), json=job, timeout=60)
    assert written.status_code == 400 and "127.0.0.1" in written.json()["message"], written.text


def test_a_refused_webhook_is_logged_without_its_query(refusing, loopback_name):
    name, _ = loopback_name
    token = "tok" + uuid.uuid4().hex
    job = {"input": {"url": "http://127.0.0.2:9/input.mp4"}, "storage": {"service": "local"},
           "outputs": {"mp4:240p": {"path": "/o.mp4"}},
           "notification": {"type": "http", "url": f"http://{name}:9/hook?token={token}"}}
    created = refusing.post_job(job)
    assert created.status_code == 201, created.text
    assert refusing.wait_job(created.json()["id"], timeout=60)["status"] == "job.failed"
    wait_until(lambda: "refused by the outbound policy" in refusing.logs(), 30, "the refused webhook in the log")
    assert token not in refusing.logs()


def test_no_signature_or_storage_secret_reaches_the_log(shared_copra, media_server, s3):
    signature, credential = "sig" + uuid.uuid4().hex, "cred" + uuid.uuid4().hex
    presigned = s3["client"].generate_presigned_url("put_object", Params={"Bucket": s3["bucket"], "Key": "leaks/put.mp4"}, ExpiresIn=600)
    query = parse_qs(urlsplit(presigned).query)
    put_signature = (query.get("X-Amz-Signature") or query["Signature"])[0]
    job = {"input": {"url": f"{media_server}/input.mp4?X-Amz-Signature={signature}&X-Amz-Credential={credential}"},
           "storage": s3_storage(s3, path="/leaks"),
           "outputs": {"mp4:240p": {"path": "/o.mp4"}, "mp4:360p": {"url": presigned}},
           # A receiver that is down, at a URL with a token: its failures are logged.
           "notification": {"type": "http", "url": f"http://127.0.0.1:9/hook?token={signature}"}}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"], timeout=180)
    assert final["status"] == "job.completed", final
    assert s3["client"].head_object(Bucket=s3["bucket"], Key="leaks/put.mp4")["ContentLength"] > 0
    logs = shared_copra.logs()
    assert created.json()["id"] in logs, "the job was logged"
    for secret in (signature, credential, put_signature, S3_SECRET):
        assert secret not in logs, f"{secret} is in the server's log"
    shown = requests.get(f"{shared_copra.url}/v2/jobs/{created.json()['id']}", auth=(KEY_A, ""), timeout=10).text
    for secret in (signature, credential, put_signature, S3_SECRET):
        assert secret not in shown, f"{secret} is in the job's view"
