"""The S3-compatible storage services a Coconut user names (dospaces, backblaze,
impossiblecloud, contabo, cdn77), each with its `endpoint` overridden to the rig's real
S3 server (moto): outputs uploaded there (checked with boto3 and ffprobe), the same
object used as a job's input, malformed credentials refused at submit naming the field,
Coconut's S3 options on the stored objects, `coconut` as the embedded local storage, the
SDK example provider (wasabi), and no secret anywhere a user or an operator can read."""

import uuid
from datetime import datetime, timezone

import pytest
import requests

from conftest import KEY_A, ROOT, S3_ACCESS, Copra, copra_with_plugins, ffprobe

# A secret string that must appear nowhere but in the requests to the store (moto does
# not check signatures, so any secret works; this one is easy to grep for).
SECRET = "s3compat-SECRET-" + uuid.uuid4().hex
REGIONS = {
    "dospaces": "ams3",
    "backblaze": "us-west-004",
    "impossiblecloud": "eu-central-2",
    "contabo": "eu2",
    "cdn77": "eu-1",
}
EXAMPLES = ROOT / "tests" / "plugins" / "dist"


def storage(s3, service, bucket, path, **extra):
    block = {
        "service": service,
        "region": REGIONS.get(service, "us-east-1"),
        "bucket": bucket,
        "path": path,
        "endpoint": s3["endpoint"],
        "credentials": {"access_key_id": S3_ACCESS, "secret_access_key": SECRET},
    }
    block.update(extra)
    return block


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    copra = Copra(tmp_path_factory.mktemp("providers") / "data").start()
    yield copra
    copra.stop()


def bucket_for(s3, service):
    name = f"prov-{service}"
    try:
        s3["client"].create_bucket(Bucket=name)
    except s3["client"].exceptions.BucketAlreadyOwnedByYou:
        pass
    return name


def run(server, job):
    created = server.post_job(job)
    assert created.status_code == 201, created.text
    final = server.wait_job(created.json()["id"])
    assert final["status"] == "job.completed", final
    return final


def downloaded(s3, bucket, key, tmp_path):
    local = tmp_path / key.replace("/", "_")
    s3["client"].download_file(bucket, key, str(local))
    return local


def no_secret_anywhere(server, job_ids, hooks=()):
    """The secret is in no job view, no event stream, no webhook, and not in the log."""
    for job_id in job_ids:
        view = server.get_job(job_id).text
        assert SECRET not in view
        events = requests.get(f"{server.url}/v2/jobs/{job_id}/events", auth=(KEY_A, ""), timeout=60).text
        assert "job.completed" in events or "job.failed" in events, events[-500:]
        assert SECRET not in events
    for hook in hooks:
        assert SECRET not in hook["raw"].decode(errors="replace")
    assert SECRET not in server.logs()


@pytest.mark.parametrize("service", sorted(REGIONS))
def test_a_service_stores_outputs_and_serves_them_as_input(service, server, s3, media_server, webhooks, tmp_path):
    bucket = bucket_for(s3, service)
    prefix = f"{service}-{uuid.uuid4().hex[:8]}"
    hook = f"/providers-{prefix}"
    job = {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": storage(s3, service, bucket, f"/{prefix}"),
        "notification": {"type": "http", "url": webhooks.url + hook, "events": True, "metadata": True},
        "outputs": {
            "mp4:240p": {"path": "/video.mp4"},
            "jpg:160x": {"path": "/thumbs/t_#num#.jpg", "number": 3},
        },
    }
    first = run(server, job)
    outputs = {o["key"]: o for o in first["outputs"]}
    # Output URLs are the overridden endpoint's path-style URLs.
    assert outputs["mp4:240p"]["url"] == f"{s3['endpoint']}/{bucket}/{prefix}/video.mp4", outputs
    video = next(s for s in ffprobe(downloaded(s3, bucket, f"{prefix}/video.mp4", tmp_path))["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["height"]) == ("h264", 240)
    listed = s3["client"].list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/thumbs/")
    keys = sorted(o["Key"] for o in listed.get("Contents", []))
    assert keys == [f"{prefix}/thumbs/t_{i}.jpg" for i in (1, 2, 3)], keys
    assert outputs["jpg:160x"]["urls"] == [f"{s3['endpoint']}/{bucket}/{k}" for k in keys]
    (picture,) = ffprobe(downloaded(s3, bucket, keys[0], tmp_path))["streams"]
    assert (picture["codec_name"], picture["width"]) == ("mjpeg", 160)
    # Without Coconut's S3 options, none of them is on the object (see the options test);
    # without an `acl`, the bucket's default (private) stays: nobody else was granted.
    head = s3["client"].head_object(Bucket=bucket, Key=f"{prefix}/video.mp4")
    assert "Expires" not in head and "CacheControl" not in head, head
    assert head.get("StorageClass", "STANDARD") == "STANDARD", head
    grants = s3["client"].get_object_acl(Bucket=bucket, Key=f"{prefix}/video.mp4")["Grants"]
    assert not [g for g in grants if g["Grantee"].get("URI", "").endswith("/AllUsers")], grants

    # The same object as the input of another job, through the same service.
    source = {k: v for k, v in storage(s3, service, bucket, "").items() if k != "path"}
    source["key"] = f"{prefix}/video.mp4"
    second = run(server, {
        "input": source,
        "storage": storage(s3, service, bucket, f"/{prefix}/again"),
        "outputs": {"jpg:120x": {"path": "/t.jpg"}},
    })
    (picture,) = ffprobe(downloaded(s3, bucket, f"{prefix}/again/t.jpg", tmp_path))["streams"]
    assert (picture["codec_name"], picture["width"]) == ("mjpeg", 120)

    webhooks.wait_for(hook, "job.completed")
    no_secret_anywhere(server, [first["id"], second["id"]], webhooks.received(hook))


BAD_CREDENTIALS = [
    ("no credentials", None, "credentials"),
    ("no secret", {"access_key_id": S3_ACCESS}, "credentials.secret_access_key"),
    ("empty secret", {"access_key_id": S3_ACCESS, "secret_access_key": ""}, "credentials.secret_access_key"),
    ("numeric key id", {"access_key_id": 12345, "secret_access_key": SECRET}, "credentials.access_key_id"),
    ("credentials as a string", f"{S3_ACCESS}:{SECRET}", "credentials"),
]


@pytest.mark.parametrize("service", sorted(REGIONS))
@pytest.mark.parametrize("case,credentials,field", BAD_CREDENTIALS, ids=[c[0] for c in BAD_CREDENTIALS])
def test_malformed_credentials_are_a_400_naming_the_field(service, case, credentials, field, server, s3, media_server):
    block = storage(s3, service, "prov-any", "/x")
    if credentials is None:
        block.pop("credentials")
    else:
        block["credentials"] = credentials
    for job in (
        {"input": {"url": f"{media_server}/input.mp4"}, "storage": block, "outputs": {"mp4:240p": {"path": "a.mp4"}}},
        {"input": dict(block, key="in.mp4"), "storage": {"service": "coconut"}, "outputs": {"mp4:240p": {"path": "a.mp4"}}},
    ):
        r = server.post_job(job)
        assert r.status_code == 400, r.text
        body = r.json()
        assert (body["status"], body["error_code"]) == ("error", "storage_credentials_not_valid"), body
        assert field in body["message"], body
        assert SECRET not in r.text
    assert SECRET not in server.logs()


def test_coconut_s3_options_are_on_the_objects(server, s3, media_server, tmp_path):
    bucket = bucket_for(s3, "dospaces")
    prefix = f"options-{uuid.uuid4().hex[:8]}"
    expires = "Wed, 21 Oct 2037 07:28:00 GMT"
    block = storage(s3, "dospaces", bucket, f"/{prefix}", acl="public-read", storage_class="STANDARD_IA",
                    cache_control="public, max-age=600", expires=expires)
    final = run(server, {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": block,
        "outputs": {"mp4:240p": {"path": "/v.mp4"}, "jpg:160x": {"path": "/t.jpg"}},
    })
    for key in (f"{prefix}/v.mp4", f"{prefix}/t.jpg"):
        head = s3["client"].head_object(Bucket=bucket, Key=key)
        assert head.get("CacheControl") == "public, max-age=600", head
        assert head.get("StorageClass") == "STANDARD_IA", head
        assert head.get("Expires") == datetime(2037, 10, 21, 7, 28, tzinfo=timezone.utc), head
        grants = s3["client"].get_object_acl(Bucket=bucket, Key=key)["Grants"]
        public = [g for g in grants if g["Grantee"].get("URI", "").endswith("/AllUsers")]
        assert [g["Permission"] for g in public] == ["READ"], grants
    # Values the service cannot take are refused at submit, naming the field.
    for field, value in [("acl", "everyone"), ("storage_class", "COLD"), ("expires", "tomorrow"), ("cache_control", "a\nb")]:
        r = server.post_job({"input": {"url": f"{media_server}/input.mp4"}, "storage": dict(block, **{field: value}),
                             "outputs": {"mp4:240p": {"path": "a.mp4"}}})
        assert (r.status_code, r.json()["error_code"]) == (400, "storage_not_valid"), (field, r.text)
        assert field in r.json()["message"], r.text
    no_secret_anywhere(server, [final["id"]])


def test_coconut_s3_options_on_a_multipart_upload(server, s3, media_server):
    """An output over the 8 MiB part size goes up as a multipart upload: the options ride
    on `CreateMultipartUpload` (and the ACL follows the completed object)."""
    bucket = bucket_for(s3, "contabo")
    prefix = f"multipart-{uuid.uuid4().hex[:8]}"
    block = storage(s3, "contabo", bucket, f"/{prefix}", acl="public-read", storage_class="STANDARD_IA",
                    cache_control="max-age=60", expires="Wed, 21 Oct 2037 07:28:00 GMT")
    run(server, {
        "input": {"url": f"{media_server}/long.mp4"},
        "storage": block,
        "outputs": {"mp4:720p_40000k::rc=cbr": {"key": "big", "path": "/big.mp4"}},
    })
    head = s3["client"].head_object(Bucket=bucket, Key=f"{prefix}/big.mp4")
    assert head["ContentLength"] > 8 << 20, head
    assert "-" in head["ETag"], f"not a multipart upload: {head['ETag']}"
    assert (head.get("CacheControl"), head.get("StorageClass")) == ("max-age=60", "STANDARD_IA"), head
    assert head.get("Expires") == datetime(2037, 10, 21, 7, 28, tzinfo=timezone.utc), head
    grants = s3["client"].get_object_acl(Bucket=bucket, Key=f"{prefix}/big.mp4")["Grants"]
    assert [g["Permission"] for g in grants if g["Grantee"].get("URI", "").endswith("/AllUsers")] == ["READ"], grants


def test_coconut_test_storage_is_the_embedded_local_storage(server, media_server, tmp_path):
    final = run(server, {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": {"service": "coconut"},
        "outputs": {"mp4:240p": {"path": "/coconut/v.mp4"}},
    })
    url = final["outputs"][0]["url"]
    assert url.startswith(f"{server.url}/files/") and url.endswith("/coconut/v.mp4"), url
    got = requests.get(url, auth=(KEY_A, ""), timeout=10)
    assert got.status_code == 200
    (tmp_path / "v.mp4").write_bytes(got.content)
    video = next(s for s in ffprobe(tmp_path / "v.mp4")["streams"] if s["codec_type"] == "video")
    assert video["height"] == 240


@pytest.mark.skipif(not (EXAMPLES / "wasabi-storage.wasm").exists(), reason="tests/plugins/dist is not built (scripts/build-test-plugins.sh)")
def test_the_sdk_example_provider_runs_a_job(tmp_path, s3, media_server):
    """examples/plugins/wasabi-storage: a whole S3-compatible provider in 40 lines."""
    grants = '[plugins.wasabi-storage]\nschemes = ["s3"]\n'
    copra = copra_with_plugins(tmp_path, ["format-video", EXAMPLES / "wasabi-storage.wasm"], grants)
    try:
        bucket = bucket_for(s3, "wasabi")
        final = run(copra, {
            "input": {"url": f"{media_server}/input.mp4"},
            "storage": storage(s3, "wasabi", bucket, "/w", region="eu-central-1"),
            "outputs": {"mp4:240p": {"path": "v.mp4"}},
        })
        assert final["outputs"][0]["url"] == f"{s3['endpoint']}/{bucket}/w/v.mp4"
        video = next(s for s in ffprobe(downloaded(s3, bucket, "w/v.mp4", tmp_path))["streams"] if s["codec_type"] == "video")
        assert video["height"] == 240
        r = copra.post_job({"input": {"url": f"{media_server}/input.mp4"},
                            "storage": {"service": "wasabi", "bucket": bucket, "credentials": {"access_key_id": "k"}},
                            "outputs": {"mp4:240p": {"path": "v.mp4"}}})
        assert (r.status_code, r.json()["error_code"]) == (400, "storage_credentials_not_valid"), r.text
        assert "credentials.secret_access_key" in r.json()["message"]
        assert SECRET not in copra.logs()
    finally:
        copra.stop()
