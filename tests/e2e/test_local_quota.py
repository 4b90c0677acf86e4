"""Disk limits of the `local` storage. `limits.local_quota_bytes` bounds what one
tenant's files take: a write that would pass it fails its output (status `*.failed`, a
message naming `local_quota_bytes`) and leaves nothing behind, a tenant's files never
pass it in all, and another tenant still writes. `limits.local_retention_days` deletes
files older than that (the sweep interval, `limits.local_sweep_interval_secs`, is one
second here; a file's age is set with os.utime)."""

import os
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

from conftest import KEY_A, KEY_B, Copra, wait_until

QUOTA = 60_000


def run(server, media_server, outputs, key=KEY_A):
    body = {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"}, "outputs": outputs}
    created = server.post_job(body, key=key)
    assert created.status_code == 201, created.text
    return server.wait_job(created.json()["id"], key=key)


def on_disk(server, url) -> Path:
    """Where a `local` output's URL (`/files/<namespace>/<path>`) is kept."""
    return server.data_dir / "files" / urlparse(url).path.removeprefix("/files/")


def url_of(job) -> str:
    """The URL of a job's only file (a picture output lists its files as `urls`)."""
    output = job["outputs"][0]
    (url,) = output["urls"] if "urls" in output else [output["url"]]
    return url


def files_of(directory: Path):
    return [p for p in directory.rglob("*") if p.is_file()]


def test_a_tenant_past_its_quota_fails_its_output_and_another_still_writes(tmp_path, media_server):
    server = Copra(tmp_path / "data", {"COPRA_LIMITS_LOCAL_QUOTA_BYTES": str(QUOTA)}).start()
    try:
        small = run(server, media_server, {"jpg:80x": {"path": "/small.jpg"}})
        assert small["status"] == "job.completed", small
        small_file = on_disk(server, url_of(small))
        tenant_dir = small_file.parent
        assert 0 < small_file.stat().st_size < QUOTA

        # A video larger than what is left: refused before a byte is written.
        big = run(server, media_server, {"mp4:360p": {"path": "/big.mp4"}})
        (output,) = big["outputs"]
        assert output["status"].endswith(".failed") and big["status"] == "job.failed", big
        assert "local_quota_bytes" in output["error"], output
        assert [p.name for p in files_of(tenant_dir)] == ["small.jpg"], "nothing of it left behind, no temporary"

        # Forty pictures, each of which fits alone: they are written until the quota is
        # reached, then the output fails; the tenant's files never pass the quota.
        many = run(server, media_server, {"jpg:320x": {"path": "/thumbs/t_%02d.jpg", "number": 40}})
        (output,) = many["outputs"]
        assert output["status"].endswith(".failed") and "local_quota_bytes" in output["error"], output
        written = files_of(tenant_dir)
        assert len(written) > 1, "the pictures that fit were written"
        assert sum(p.stat().st_size for p in written) <= QUOTA, [p.stat().st_size for p in written]
        assert not any(p.name.endswith(".copra-part") for p in written)

        # The other tenant has its own quota.
        other = run(server, media_server, {"jpg:80x": {"path": "/small.jpg"}}, key=KEY_B)
        assert other["status"] == "job.completed", other
        assert on_disk(server, url_of(other)).exists()
        # And A's outputs within the quota are served as before.
        r = requests.get(url_of(small), auth=(KEY_A, ""), timeout=10)
        assert r.status_code == 200 and r.content == small_file.read_bytes()
    finally:
        server.stop()


def test_files_past_their_retention_are_deleted(tmp_path, media_server):
    server = Copra(tmp_path / "data", {"COPRA_LIMITS_LOCAL_RETENTION_DAYS": "1",
                                      "COPRA_LIMITS_LOCAL_SWEEP_INTERVAL_SECS": "1"}).start()
    try:
        old_a = url_of(run(server, media_server, {"jpg:80x": {"path": "/old/a.jpg"}}))
        new_a = url_of(run(server, media_server, {"jpg:80x": {"path": "/new/a.jpg"}}))
        old_b = url_of(run(server, media_server, {"jpg:80x": {"path": "/old/b.jpg"}}, key=KEY_B))
        three_days_ago = time.time() - 3 * 86_400
        for url in (old_a, old_b):
            os.utime(on_disk(server, url), (three_days_ago, three_days_ago))
        for url in (old_a, old_b):
            wait_until(lambda: not on_disk(server, url).exists(), 15, f"{url} to be swept")
        assert not on_disk(server, old_a).parent.exists(), "the directory it left empty goes too"
        assert on_disk(server, old_a).parent.parent.is_dir(), "the tenant's own directory stays"
        assert requests.get(old_a, auth=(KEY_A, ""), timeout=10).status_code == 404
        # A file within its retention survives the sweeps that follow.
        wait_until(lambda: server.logs().count("local files past their retention deleted") >= 1, 10, "the sweep's log line")
        time.sleep(2.5)  # two more sweeps, which must leave it alone
        assert on_disk(server, new_a).exists()
        assert requests.get(new_a, auth=(KEY_A, ""), timeout=10).status_code == 200
    finally:
        server.stop()
