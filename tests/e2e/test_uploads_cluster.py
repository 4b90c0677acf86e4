"""Direct uploads in a cluster whose nodes share no file system (`[worker]
ultrafast_store`, the work area; moto here): an upload taken by one API node is copied
to the work area when it is finished, a job naming it may be submitted to another API
node, and a worker with its own data directory reads it from there. Deleting the upload
removes its copy."""

import uuid

import requests
from tusclient import client as tus_client

from conftest import KEY_A, KEY_B, ffprobe, make_video, s3_storage, wait_until
from test_scale_out import Cluster, bucket_keys, database  # noqa: F401 (fixture)
from test_ultrafast_store import store_env


def test_an_upload_taken_by_one_node_is_read_by_a_worker_on_another(tmp_path, database, s3):  # noqa: F811
    area = "up-area-" + uuid.uuid4().hex[:6]
    cluster = Cluster(tmp_path, database, store_env(s3, area))
    try:
        api_a, api_b = cluster.api(), cluster.api()
        cluster.worker()
        video = tmp_path / "clip.mp4"
        make_video(video, size="640x360", duration=3)
        client = tus_client.TusClient(f"{api_a.url}/v2/uploads", headers={"Authorization": f"Bearer {KEY_A}"})
        uploader = client.uploader(file_path=str(video), chunk_size=256 << 10)
        uploader.upload()
        upload_id = uploader.url.rsplit("/", 1)[1]
        stored = [k for k in bucket_keys(s3, area) if "/uploads/" in k and k.endswith("/" + upload_id)]
        assert len(stored) == 1, bucket_keys(s3, area)
        size = s3["client"].head_object(Bucket=s3["bucket"], Key=stored[0])["ContentLength"]
        assert size == video.stat().st_size

        # Another key cannot name it, on either node.
        name = "up-" + uuid.uuid4().hex[:6]
        job = {"input": {"upload": upload_id}, "storage": s3_storage(s3, path=f"/{name}"), "outputs": {"mp4:240p": {"path": "/out.mp4"}}}
        for node in (api_a, api_b):
            r = node.post_job(job, key=KEY_B)
            assert r.status_code == 400 and upload_id in r.json()["message"], r.text

        # Submitted to the node that did not take it; run by a worker with its own disk.
        r = api_b.post_job(job)
        assert r.status_code == 201, r.text
        view = api_b.wait_job(r.json()["id"], timeout=180)
        assert view["status"] == "job.completed", view
        local = tmp_path / "out.mp4"
        s3["client"].download_file(s3["bucket"], f"{name}/out.mp4", str(local))
        assert [s["height"] for s in ffprobe(local)["streams"] if s["codec_type"] == "video"] == [240]

        # Termination removes the copy too.
        r = requests.delete(uploader.url, headers={"Authorization": f"Bearer {KEY_A}", "Tus-Resumable": "1.0.0"}, timeout=10)
        assert r.status_code == 204
        wait_until(lambda: not [k for k in bucket_keys(s3, area) if k.endswith(upload_id)], 10, "the upload's copy to go")
    finally:
        cluster.stop()
