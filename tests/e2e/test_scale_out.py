"""Scale-out on one PostgreSQL database: API nodes (`copra serve --no-worker`) and worker
processes (`copra worker`) as an operator runs them. Jobs submitted across API nodes all
complete with one set of outputs each; workers killed with SIGKILL mid-encode lose no
job; a worker told to stop (SIGTERM) finishes its job or hands it over and exits 0; one
tenant's backlog does not hold back another tenant's job.

Each test gets its own database (conftest's `database` fixture), so NOTIFY channels and
tables are its own."""

import signal
import time
import uuid
from collections import Counter

import pytest
import requests

# `database` is conftest's (imported too for the modules that import it from here).
from conftest import COPRA_BIN, KEY_A, KEY_B, PG_SERVER, Copra, database, make_video, psql, s3_storage, wait_until  # noqa: F401

LEASE = 4


@pytest.fixture(scope="module")
def inputs(media_dir):
    """A short input (cheap jobs) and longer ones (encodes to interrupt)."""
    make_video(media_dir / "q-short.mp4", size="320x240", duration=1)
    make_video(media_dir / "q-medium.mp4", size="640x360", duration=12)
    make_video(media_dir / "q-kill.mp4", size="480x270", duration=8)
    # Long enough that no machine finishes it within a 1 s grace after a signal at 30 %.
    make_video(media_dir / "q-long.mp4", size="640x360", duration=40)
    return {"short": "q-short.mp4", "medium": "q-medium.mp4", "kill": "q-kill.mp4", "long": "q-long.mp4"}


class Node(Copra):
    """`copra serve --no-worker` (`api=True`) or `copra worker`, on a shared database."""

    def __init__(self, data_dir, env, api):
        super().__init__(data_dir, env)
        self.api = api

    def command(self):
        return [str(COPRA_BIN), *(["serve", "--no-worker"] if self.api else ["worker"])]

    def ready(self):
        if self.api:
            return super().ready()
        return "worker claiming jobs" in self.new_logs()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()


class Cluster:
    def __init__(self, root, database, extra=None):
        self.root = root
        self.db = database
        self.env = {"COPRA_DATABASE_URL": f"{PG_SERVER}/{database}",
                    # Every node seals and opens job secrets with the same key.
                    "COPRA_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
                    "COPRA_QUEUE_LEASE_SECS": str(LEASE),
                    "RUST_LOG": "info,copra=debug"}
        self.env.update(extra or {})
        self.apis, self.workers = [], []
        self.count = 0

    def api(self):
        self.count += 1
        node = Node(self.root / f"api{self.count}", self.env, api=True).start()
        self.apis.append(node)
        return node

    def worker(self, **env):
        self.count += 1
        name = f"w{self.count}"
        node = Node(self.root / name, {**self.env, "COPRA_WORKER_ID": name, **env}, api=False).start()
        node.name = name
        self.workers.append(node)
        return node

    def stop(self):
        for node in self.apis + self.workers:
            if node.proc and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGKILL)
                node.proc.wait(10)

    def rows(self, sql):
        return [line.split("|") for line in psql(sql, self.db).splitlines() if line]


def job_body(media_server, inputs, s3, prefix, i, hook_url, input_name="short", output="mp4:240p"):
    return {"input": {"url": f"{media_server}/{inputs[input_name]}"}, "storage": s3_storage(s3, path=f"/{prefix}"),
            "outputs": {output: {"path": f"/job-{i}.mp4"}},
            "notification": {"type": "http", "url": hook_url, "events": True}}


def submit(node, body, key=KEY_A):
    created = node.post_job(body, key=key)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def bucket_keys(s3, prefix):
    listed = s3["client"].list_objects_v2(Bucket=s3["bucket"], Prefix=f"{prefix}/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def completed_hooks(webhooks, path):
    return Counter(h["body"]["job_id"] for h in webhooks.received(path, "job.completed"))


def test_two_api_nodes_three_workers_thirty_jobs(tmp_path, database, media_server, inputs, s3, webhooks):
    cluster = Cluster(tmp_path, database)
    prefix, path = "q-" + uuid.uuid4().hex[:8], "/scale-" + uuid.uuid4().hex[:8]
    try:
        apis = [cluster.api(), cluster.api()]
        workers = [cluster.worker() for _ in range(3)]

        # Pickup latency with idle workers: woken by NOTIFY, not by their 1 s poll.
        latencies = []
        for i in range(5):
            sent = time.monotonic()
            job_id = submit(apis[i % 2], job_body(media_server, inputs, s3, prefix + "-pickup", i, webhooks.url + path))
            wait_until(lambda: apis[0].get_job(job_id).json()["input"]["status"] != "input.starting", 10,
                       "the job picked up", interval=0.005)
            latencies.append(time.monotonic() - sent)
            apis[0].wait_job(job_id, timeout=60)
        latencies.sort()
        assert latencies[2] < 0.12, f"median pickup {latencies[2]:.3f}s: workers were not woken by NOTIFY ({latencies})"

        jobs = [submit(apis[i % 2], job_body(media_server, inputs, s3, prefix, i, webhooks.url + path)) for i in range(30)]
        for job_id in jobs:
            final = apis[1].wait_job(job_id, timeout=150)
            assert final["status"] == "job.completed", final
        assert bucket_keys(s3, prefix) == sorted(f"{prefix}/job-{i}.mp4" for i in range(30)), "one set of outputs per job"

        expected = set(jobs)
        wait_until(lambda: expected <= set(completed_hooks(webhooks, path)), 60, "job.completed for every job")
        time.sleep(2)  # room for a duplicate to show up, if one were on its way
        counts = completed_hooks(webhooks, path)
        assert all(counts[j] == 1 for j in jobs), {j: counts[j] for j in jobs if counts[j] != 1}
        # The work was shared: every worker ran jobs.
        for worker in workers:
            assert worker.logs().count("job started") >= 1, worker.name

        # A listener whose connection drops is remade: cut all three, see three new ones.
        listeners = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                     "AND query ILIKE '%LISTEN%copra_jobs%'")
        before = {pid for pid, in cluster.rows(listeners)}
        assert len(before) == 3, before
        cluster.rows(f"SELECT pg_terminate_backend(pid) FROM ({listeners}) l")
        wait_until(lambda: len({pid for pid, in cluster.rows(listeners)} - before) == 3, 20, "three listeners again")
        job_id = submit(apis[0], job_body(media_server, inputs, s3, prefix + "-after", 0, webhooks.url + path))
        assert apis[0].wait_job(job_id, timeout=60)["status"] == "job.completed"
        assert all("reconnecting" in w.logs() for w in workers)
    finally:
        cluster.stop()


def test_workers_killed_mid_encode_lose_no_job(tmp_path, database, media_server, inputs, s3, webhooks):
    cluster = Cluster(tmp_path, database)
    prefix, path = "q-" + uuid.uuid4().hex[:8], "/kill-" + uuid.uuid4().hex[:8]
    try:
        api = cluster.api()
        for _ in range(3):
            cluster.worker()
        jobs = []

        def more(n):
            for _ in range(n):
                body = job_body(media_server, inputs, s3, prefix, len(jobs), webhooks.url + path, "kill", "mp4:240p")
                jobs.append(submit(api, body))

        more(6)
        killed = {}  # job id -> when its worker was killed
        deadline = time.monotonic() + 120
        while len(killed) < 5:
            assert time.monotonic() < deadline, f"only {len(killed)} kills"
            rows = cluster.rows("SELECT id, lease_owner, progress FROM jobs WHERE status = 'job.starting'")
            encoding = [(j, owner) for j, owner, progress in rows
                        if owner and 5 <= int(progress) <= 80 and j not in killed]
            if not encoding:
                if len(rows) < 3:
                    more(3)
                time.sleep(0.1)
                continue
            job_id, owner = encoding[0]
            victim = next(w for w in cluster.workers if w.name == owner)
            victim.kill()
            cluster.workers.remove(victim)
            cluster.worker()  # a new process, a new identity: the old lease must expire
            # On a busy machine the victim may have finished the job between the read and
            # the kill: only a job still unfinished once its worker is dead was interrupted.
            if cluster.rows(f"SELECT status FROM jobs WHERE id = '{job_id}'") == [["job.starting"]]:
                killed[job_id] = time.time()

        for job_id in jobs:
            assert api.wait_job(job_id, timeout=120)["status"] == "job.completed"
        done = {j: int(at) / 1000 for j, at in cluster.rows("SELECT id, completed_at FROM jobs")}
        encode = max(done[j] - killed[j] for j in killed)
        # Lease time plus one encode of this input (a few seconds here), with room for 2 busy cores.
        assert encode <= LEASE + 25, {j: round(done[j] - killed[j], 1) for j in killed}
        assert cluster.rows("SELECT count(*) FROM jobs WHERE status <> 'job.completed'") == [["0"]]
        assert bucket_keys(s3, prefix) == sorted(f"{prefix}/job-{i}.mp4" for i in range(len(jobs)))
        wait_until(lambda: set(jobs) <= set(completed_hooks(webhooks, path)), 60, "job.completed for every job")
        attempts = dict(cluster.rows("SELECT id, attempts FROM jobs"))
        assert all(int(attempts[j]) >= 2 for j in killed), attempts
    finally:
        cluster.stop()


def test_sigterm_finishes_the_job_or_hands_it_over(tmp_path, database, media_server, inputs, s3):
    # A long lease: a handed-over job is taken at once, not when its lease expires.
    cluster = Cluster(tmp_path, database, {"COPRA_QUEUE_LEASE_SECS": "60"})
    prefix = "q-" + uuid.uuid4().hex[:8]
    try:
        api = cluster.api()

        def encoding(job_id, until=80):
            view = api.get_job(job_id).json()
            return 5 <= int(view["progress"].rstrip("%")) <= until

        # 1. Enough grace: the job finishes on the worker, which then exits 0.
        patient = cluster.worker(COPRA_WORKER_SHUTDOWN_GRACE_SECS="60")
        job_id = submit(api, job_body(media_server, inputs, s3, prefix, 1, "http://127.0.0.1:9/none", "medium", "mp4:360p"))
        wait_until(lambda: encoding(job_id), 60, "the job part-way encoded", interval=0.05)
        patient.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert patient.proc.wait(60) == 0
        assert api.get_job(job_id).json()["status"] == "job.completed", "finished before the process exited"
        assert time.monotonic() - started < 60

        # 2. A grace too short: the job is stopped, its lease released, and another
        # worker finishes it long before the 60 s lease would have expired.
        hasty = cluster.worker(COPRA_WORKER_SHUTDOWN_GRACE_SECS="1")
        job_id = submit(api, job_body(media_server, inputs, s3, prefix, 2, "http://127.0.0.1:9/none", "long", "mp4:360p"))
        wait_until(lambda: encoding(job_id, 30), 60, "the job part-way encoded", interval=0.05)
        hasty.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert hasty.proc.wait(30) == 0
        assert time.monotonic() - sent < 1 + 5 + 3, "exited within the grace (and the stop wait)"
        assert "lease released for another worker" in hasty.logs()
        assert cluster.rows(f"SELECT lease_owner IS NULL, attempts FROM jobs WHERE id = '{job_id}'") == [["t", "0"]], \
            "the claim is given back and not counted"
        cluster.worker()
        final = api.wait_job(job_id, timeout=90)
        assert final["status"] == "job.completed", final
        assert bucket_keys(s3, prefix) == [f"{prefix}/job-1.mp4", f"{prefix}/job-2.mp4"]

        # 3. A second signal does not wait for the grace. (An idle worker exits at once.)
        idle = cluster.workers[-1]
        idle.proc.send_signal(signal.SIGTERM)
        assert idle.proc.wait(10) == 0
        third = cluster.worker(COPRA_WORKER_SHUTDOWN_GRACE_SECS="60")
        job_id = submit(api, job_body(media_server, inputs, s3, prefix, 3, "http://127.0.0.1:9/none", "long", "mp4:360p"))
        wait_until(lambda: encoding(job_id, 30), 60, "the job part-way encoded", interval=0.05)
        third.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "shutting down" in third.logs(), 10, "the shutdown under way")
        third.proc.send_signal(signal.SIGTERM)
        assert third.proc.wait(5) == 130

        # An API node stops accepting and exits 0 too.
        api.proc.send_signal(signal.SIGTERM)
        assert api.proc.wait(15) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{api.url}/health", timeout=2)
    finally:
        cluster.stop()


def test_one_tenants_backlog_does_not_starve_another(tmp_path, database, media_server, inputs, s3):
    cluster = Cluster(tmp_path, database)
    prefix = "q-" + uuid.uuid4().hex[:8]
    try:
        api = cluster.api()
        cluster.worker()
        for i in range(200):
            submit(api, job_body(media_server, inputs, s3, prefix, i, "http://127.0.0.1:9/none"), key=KEY_A)
        wait_until(lambda: cluster.rows("SELECT count(*) FROM jobs WHERE status = 'job.completed'") >= [["2"]], 60,
                   "the backlog under way")
        single = submit(api, job_body(media_server, inputs, s3, prefix, "single", "http://127.0.0.1:9/none"), key=KEY_B)
        assert api.wait_job(single, timeout=60, key=KEY_B)["status"] == "job.completed"
        # Claimed before the backlog's next job or the one after (one job's time).
        (created, claimed), = cluster.rows(f"SELECT created_at, claimed_at FROM jobs WHERE id = '{single}'")
        ahead = cluster.rows(f"SELECT count(*) FROM jobs WHERE id <> '{single}' "
                             f"AND claimed_at > {created} AND claimed_at < {claimed}")
        assert int(ahead[0][0]) <= 1, f"{ahead[0][0]} of the backlog's jobs were claimed before the single job"
        left = int(cluster.rows("SELECT count(*) FROM jobs WHERE status = 'job.starting'")[0][0])
        assert left > 150, "the single job did not wait for the backlog"
    finally:
        cluster.stop()


def test_a_keys_cap_holds_across_workers(tmp_path, database, media_server, inputs, s3):
    cluster = Cluster(tmp_path, database, {"COPRA_QUEUE_MAX_RUNNING_PER_KEY": "1"})
    prefix = "q-" + uuid.uuid4().hex[:8]
    try:
        api = cluster.api()
        cluster.worker()
        cluster.worker()
        jobs = [submit(api, job_body(media_server, inputs, s3, prefix, i, "http://127.0.0.1:9/none"), key=KEY_A)
                for i in range(6)]
        most = 0
        deadline = time.monotonic() + 90
        while cluster.rows("SELECT count(*) FROM jobs WHERE status = 'job.starting'") != [["0"]]:
            assert time.monotonic() < deadline, "the jobs did not finish"
            running = cluster.rows("SELECT count(*) FROM jobs WHERE status = 'job.starting' AND lease_owner IS NOT NULL")
            most = max(most, int(running[0][0]))
            time.sleep(0.05)
        assert most == 1, f"{most} jobs of one key ran at once under a cap of 1"
        assert all(api.get_job(j).json()["status"] == "job.completed" for j in jobs)
    finally:
        cluster.stop()
