"""A retried job leaves exactly one whole set of outputs: the multipart uploads an
interrupted attempt left open on S3 are aborted, local files appear whole under their
final name (written through a temporary and a rename), and the temporaries a killed
attempt left are removed when the job runs again."""

import hashlib
import signal
import threading

import requests

from conftest import KEY_A, Copra, ffprobe, s3_storage, wait_until


def _midway(server, job_id):
    def check():
        view = server.get_job(job_id).json()
        percent = int(view["progress"].rstrip("%"))
        return view["outputs"][0]["status"] == "video.encoding" and 0 < percent < 100 and percent
    return wait_until(check, 60, "encoding to be under way")


def test_a_retried_job_aborts_the_multipart_uploads_a_killed_attempt_left(tmp_path, media_server, s3):
    client, bucket = s3["client"], s3["bucket"]
    key, neighbour = "idem/r.mp4", "idem/r.mp4.keep"
    server = Copra(tmp_path / "data").start()
    try:
        job = {"input": {"url": f"{media_server}/long.mp4"}, "storage": s3_storage(s3, path="/idem"),
               "outputs": {"mp4:720p": {"path": "/r.mp4"}}}
        created = server.post_job(job)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        _midway(server, job_id)
        # What the killed attempt was in the middle of: a multipart upload of the output's
        # key with a part sent; and an unrelated upload of a neighbouring key.
        left = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        client.upload_part(Bucket=bucket, Key=key, UploadId=left, PartNumber=1, Body=b"x" * (5 << 20))
        other = client.create_multipart_upload(Bucket=bucket, Key=neighbour)["UploadId"]
        server.stop(signal.SIGKILL)
        open_keys = {u["Key"] for u in client.list_multipart_uploads(Bucket=bucket, Prefix="idem/").get("Uploads", [])}
        assert open_keys == {key, neighbour}

        server.start()
        final = server.wait_job(job_id, timeout=180)
        assert final["status"] == "job.completed", final

        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix="idem/").get("Uploads", [])
        assert [(u["Key"], u["UploadId"]) for u in uploads] == [(neighbour, other)], "the killed attempt's upload is still open"
        assert "aborted multipart uploads an earlier attempt left open" in server.logs()
        objects = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="idem/").get("Contents", [])]
        assert objects == [key], "exactly one set of outputs"
        local = tmp_path / "r.mp4"
        client.download_file(bucket, key, str(local))
        assert abs(float(ffprobe(local)["format"]["duration"]) - 20.0) <= 0.1
    finally:
        client.abort_multipart_upload(Bucket=bucket, Key=neighbour, UploadId=other)
        server.stop()


def test_local_files_are_never_served_partial_and_stale_temporaries_go(tmp_path, media_server):
    server = Copra(tmp_path / "data").start()
    try:
        # A first job tells where this tenant's files are served and stored.
        small = {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"},
                 "outputs": {"mp4:240p": {"path": "/probe/first.mp4"}}}
        first = server.wait_job(server.post_job(small).json()["id"])
        assert first["status"] == "job.completed", first
        first_url = first["outputs"][0]["url"]
        base_url = first_url[: -len("/probe/first.mp4")]
        namespace = base_url.rsplit("/", 1)[1]
        files = tmp_path / "data" / "files" / namespace
        assert (files / "probe" / "first.mp4").is_file()

        job = {"input": {"url": f"{media_server}/long.mp4"}, "storage": {"service": "local"},
               "outputs": {"mp4:720p": {"path": "/idem/r.mp4"}}}
        job_id = server.post_job(job).json()["id"]
        _midway(server, job_id)
        server.stop(signal.SIGKILL)
        # What a kill during the copy leaves: a temporary beside the final name.
        (files / "idem").mkdir(parents=True, exist_ok=True)
        stale = files / "idem" / ".r.mp4.0123456789abcdef.copra-part"
        stale.write_bytes(b"half a file")
        # A temporary is never served, even by its own name.
        server.start()
        hidden = requests.get(f"{base_url}/idem/{stale.name}", auth=(KEY_A, ""), timeout=10)
        assert hidden.status_code == 404

        # Readers poll the final URL while the retried job writes it: each answer is a
        # 404 or the whole file, never part of one.
        seen, other, stop = [], [], threading.Event()

        def poll():
            session = requests.Session()
            while not stop.is_set():
                r = session.get(f"{base_url}/idem/r.mp4", auth=(KEY_A, ""), timeout=10)
                if r.status_code not in (200, 404):
                    other.append(r.status_code)
                elif r.status_code == 200:
                    seen.append(hashlib.sha256(r.content).hexdigest())

        pollers = [threading.Thread(target=poll) for _ in range(2)]
        for t in pollers:
            t.start()
        try:
            final = server.wait_job(job_id, timeout=180)
            # Keep reading a moment after the job ends, so the final file is seen too.
            wait_until(lambda: len(seen) >= 3, 30, "the final file to be served")
        finally:
            stop.set()
            for t in pollers:
                t.join(30)
        assert final["status"] == "job.completed", final
        assert not other, f"answers other than 200 and 404: {other}"
        whole = (files / "idem" / "r.mp4").read_bytes()
        assert set(seen) == {hashlib.sha256(whole).hexdigest()}, "a reader saw a partial file"
        assert abs(float(ffprobe(files / "idem" / "r.mp4")["format"]["duration"]) - 20.0) <= 0.1
        assert sorted(p.name for p in (files / "idem").iterdir()) == ["r.mp4"], "a temporary was left behind"
        assert "removed temporaries an earlier attempt left" in server.logs()
    finally:
        server.stop()
