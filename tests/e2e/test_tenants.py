"""Each API key is a tenant: its `local` files live in a namespace of its own that no
other key can download, read as input, or overwrite; its jobs and metadata are 404 to
other keys. Keys, the database and sealed secrets are kept owner-only, and secrets never
reach the database in clear or the log."""

import re
import sqlite3
import stat

import pytest
import requests

from conftest import KEY_A, KEY_B, S3_SECRET, Copra, ffprobe, s3_storage
from test_custom_storage import put_server  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def tenants_copra(tmp_path_factory):
    server = Copra(tmp_path_factory.mktemp("tenants") / "data").start()
    yield server
    server.stop()


def run(server, job, key):
    created = server.post_job(job, key=key)
    assert created.status_code == 201, created.text
    return server.wait_job(created.json()["id"], key=key)


def local_job(media_server, fmt, path, **storage):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local", **storage},
            "outputs": {fmt: {"path": path}}}


def get(server, url_or_path, key):
    url = url_or_path if url_or_path.startswith("http") else server.url + url_or_path
    return requests.get(url, auth=(key, "") if key else None, timeout=10)


def size_of(content, tmp_path, name):
    f = tmp_path / name
    f.write_bytes(content)
    video = next(s for s in ffprobe(f)["streams"] if s["codec_type"] == "video")
    return video["width"], video["height"]


def test_same_path_two_tenants_never_meet(tenants_copra, media_server, tmp_path):
    a = run(tenants_copra, local_job(media_server, "mp4:240p", "/shared/v.mp4"), KEY_A)
    b = run(tenants_copra, local_job(media_server, "mp4:360p", "/shared/v.mp4"), KEY_B)
    assert a["status"] == b["status"] == "job.completed", (a, b)
    url_a, url_b = a["outputs"][0]["url"], b["outputs"][0]["url"]
    assert url_a != url_b
    pattern = re.escape(tenants_copra.url) + r"/files/t[0-9a-f]{24}/shared/v\.mp4"
    assert re.fullmatch(pattern, url_a) and re.fullmatch(pattern, url_b), (url_a, url_b)
    # Neither the key nor its hash appears in the URL.
    assert KEY_A not in url_a and KEY_B not in url_b

    # Each tenant reads its own file; B wrote after A and did not overwrite it.
    assert size_of(get(tenants_copra, url_a, KEY_A).content, tmp_path, "a.mp4") == (426, 240)
    assert size_of(get(tenants_copra, url_b, KEY_B).content, tmp_path, "b.mp4") == (640, 360)

    # Another tenant's file is "not found", exactly like a missing one; no key is 401.
    for url, key in ((url_a, KEY_B), (url_b, KEY_A)):
        refused = get(tenants_copra, url, key)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error_code"] == "file_not_found"
    assert get(tenants_copra, url_a, None).status_code == 401
    ns_a = url_a.split("/files/")[1].split("/")[0]
    ns_b = url_b.split("/files/")[1].split("/")[0]
    for sneaky in (f"/files/{ns_b}/%2e%2e/{ns_a}/shared/v.mp4", f"/files/{ns_b}/..%2f{ns_a}/shared/v.mp4",
                   f"/files/{ns_b}/%2E%2E%2F{ns_a}%2Fshared%2Fv.mp4", "/files/shared/v.mp4", f"/files/{ns_a}"):
        assert get(tenants_copra, sneaky, KEY_B).status_code in (400, 404), sneaky

    # On disk: one directory per tenant, named by neither key.
    files = tenants_copra.data_dir / "files"
    assert (files / ns_a / "shared" / "v.mp4").is_file() and (files / ns_b / "shared" / "v.mp4").is_file()
    assert not (files / "shared").exists()
    assert all(KEY_A not in p.name and KEY_B not in p.name for p in files.rglob("*"))


def test_a_tenant_cannot_read_another_tenants_file_as_input(tenants_copra, media_server):
    a = run(tenants_copra, local_job(media_server, "mp4:240p", "/only-a/secret.mp4"), KEY_A)
    assert a["status"] == "job.completed", a
    ns_a = a["outputs"][0]["url"].split("/files/")[1].split("/")[0]

    def as_input(key_path, out="/stolen.mp4"):
        return {"input": {"service": "local", "key": key_path}, "storage": {"service": "local"},
                "outputs": {"mp4:240p": {"path": out}}}

    # The same key inside B's own namespace does not exist: the input fails.
    stolen = run(tenants_copra, as_input("only-a/secret.mp4"), KEY_B)
    assert stolen["status"] == "job.failed", stolen
    assert stolen["input"]["status"] == "input.failed"
    # Climbing out of the namespace is refused before any I/O.
    for climb in (f"../{ns_a}/only-a/secret.mp4", f"/../../{ns_a}/only-a/secret.mp4", f"..\\{ns_a}\\only-a\\secret.mp4"):
        created = tenants_copra.post_job(as_input(climb), key=KEY_B)
        if created.status_code == 201:
            final = tenants_copra.wait_job(created.json()["id"], key=KEY_B)
            assert final["status"] == "job.failed", (climb, final)
        else:
            assert created.status_code == 400, created.text
            assert created.json()["status"] == "error"
    # A itself reads it back as an input.
    own = run(tenants_copra, as_input("only-a/secret.mp4", out="/mine.mp4"), KEY_A)
    assert own["status"] == "job.completed", own
    # B's "stolen" output was never written anywhere.
    assert not list((tenants_copra.data_dir / "files").rglob("stolen.mp4"))


def test_jobs_and_metadata_are_404_across_tenants(tenants_copra, media_server):
    a = run(tenants_copra, local_job(media_server, "mp4:240p", "/m.mp4"), KEY_A)
    for path in (f"/v2/jobs/{a['id']}", f"/v2/metadata/jobs/{a['id']}", f"/v2/metadata/jobs/{a['id']}/source",
                 f"/v0/jobs/{a['id']}"):
        assert get(tenants_copra, path, KEY_A).status_code == 200, path
        other = get(tenants_copra, path, KEY_B)
        assert other.status_code == 404, (path, other.text)


def test_secrets_are_sealed_at_rest_and_never_logged(tenants_copra, media_server, s3, put_server):
    root, port = put_server
    signature = "sig0123456789secretsignature"
    job = {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": s3_storage(s3, path="/sealed"),
        "outputs": {"mp4:240p": {"path": "/v.mp4"},
                    "mp4:360p": {"url": f"http://127.0.0.1:{port}/p.mp4?X-Amz-Signature={signature}"}},
    }
    final = run(tenants_copra, job, KEY_A)
    assert final["status"] == "job.completed", final
    assert (root / "p.mp4").is_file()

    data = tenants_copra.data_dir
    db = sqlite3.connect(f"file:{data / 'copra.db'}?mode=ro", uri=True)
    (spec,) = db.execute("SELECT spec FROM jobs WHERE id = ?", (final["id"],)).fetchone()
    db.close()
    assert spec.startswith("sealed:v1:"), spec[:40]
    # Neither the storage secret nor the presigned signature is anywhere in the database
    # files or the log.
    for path in [data / "copra.db", data / "copra.db-wal", tenants_copra.log_path]:
        if path.exists():
            raw = path.read_bytes()
            assert S3_SECRET.encode() not in raw, path
            assert signature.encode() not in raw, path

    # Owner-only: the data directory, the database and the generated keys.
    def mode(p):
        return stat.S_IMODE(p.stat().st_mode)
    assert mode(data / "copra.db") == 0o600
    assert mode(data / "secret-key") == 0o600
    assert mode(data / "worker-id") == 0o600


def test_keys_are_generated_owner_only_and_work(tmp_path, media_server):
    server = Copra(tmp_path / "data", {"COPRA_API_KEYS": "", "COPRA_ADMIN_KEY": ""})
    server.env.pop("COPRA_API_KEYS")
    server.env.pop("COPRA_ADMIN_KEY")
    # A data directory the server creates itself (the rig's own holds the log).
    data = tmp_path / "fresh" / "data"
    server.env["COPRA_DATA_DIR"] = str(data)
    server.start()
    try:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for name in ("api-key", "admin-key", "secret-key", "worker-id"):
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
        key = (data / "api-key").read_text().strip()
        admin = (data / "admin-key").read_text().strip()
        assert len(key) >= 24 and admin.startswith("admin-")
        assert get(server, "/v2/jobs/none", key).status_code == 404
        assert get(server, "/v2/jobs/none", key[:-1]).status_code == 401
        assert requests.get(f"{server.url}/admin/plugins", headers={"Authorization": f"Bearer {admin}"}, timeout=10).status_code == 200
        assert requests.get(f"{server.url}/admin/plugins", headers={"Authorization": f"Bearer {admin[:-1]}"}, timeout=10).status_code == 401
    finally:
        server.stop()
