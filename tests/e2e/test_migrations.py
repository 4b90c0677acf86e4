"""The schema is versioned: a database made by the previous release (tables created
without migrations, output statuses as text) is upgraded in place at start, its jobs
intact and readable, and a job it had queued runs to completion afterwards. The same on
SQLite and on PostgreSQL."""

import hashlib
import json
import sqlite3
import subprocess
import threading
import time
import uuid

import pytest

from conftest import KEY_A, Copra, ffprobe

PG = "postgres://postgres@127.0.0.1:5432/test"

# The schema exactly as the release before migrations created it (SQLite dialect; the
# PostgreSQL one differs only in its auto-increment ids).
OLD_SCHEMA = """
CREATE TABLE "jobs" ( "id" varchar NOT NULL PRIMARY KEY, "owner" varchar NOT NULL, "status" varchar NOT NULL, "input_status" varchar NOT NULL, "progress" integer NOT NULL, "spec" text NOT NULL, "input_metadata" text, "error" text, "created_at" bigint NOT NULL, "completed_at" bigint, "lease_owner" varchar, "lease_expires_at" bigint, "attempts" integer NOT NULL );
CREATE TABLE "outputs" ( "id" {serial} NOT NULL PRIMARY KEY {autoincrement}, "job_id" varchar NOT NULL, "position" integer NOT NULL, "key" varchar NOT NULL, "format" varchar NOT NULL, "output_type" varchar NOT NULL, "status" varchar NOT NULL, "url" text, "urls" text, "metadata" text, "error" text, FOREIGN KEY ("job_id") REFERENCES "jobs" ("id") ON DELETE CASCADE );
CREATE TABLE "events" ( "id" {serial} NOT NULL PRIMARY KEY {autoincrement}, "job_id" varchar NOT NULL, "event" varchar NOT NULL, "payload" text NOT NULL, "created_at" bigint NOT NULL, "pending" boolean NOT NULL, "attempts" integer NOT NULL, "next_attempt_at" bigint NOT NULL, "last_error" text );
CREATE INDEX jobs_queue ON jobs (status, lease_expires_at, created_at);
CREATE INDEX outputs_job ON outputs (job_id, position);
CREATE INDEX events_pending ON events (pending, id);
CREATE INDEX events_job ON events (job_id, id);
"""

OUTPUT_STATUSES = [("video", "video.encoded"), ("image", "image.created"), ("video", "video.failed"), ("httpstream", "httpstream.packaged")]


def old_rows(media_server):
    """SQL inserting one finished job (spec stored in clear, as the old release did) and
    one job still queued."""
    owner = hashlib.sha256(KEY_A.encode()).hexdigest()
    now = int(time.time() * 1000)
    finished_spec = {"input": {"url": f"{media_server}/input.mp4", "raw": {"url": f"{media_server}/input.mp4"}},
                     "storage": {"service": "local"},
                     "outputs": [{"key": f"o{i}", "format": "mp4", "path": f"/o{i}.mp4", "params": {}} for i in range(4)],
                     "settings": {}}
    queued_spec = {"input": {"url": f"{media_server}/input.mp4", "raw": {"url": f"{media_server}/input.mp4"}},
                   "storage": {"service": "local"},
                   "outputs": [{"key": "mp4:240p", "format": "mp4:240p", "path": "/upgraded.mp4", "params": {"path": "/upgraded.mp4"}}],
                   "settings": {}}
    q = lambda v: "'" + str(v).replace("'", "''") + "'"  # noqa: E731
    rows = [
        f"INSERT INTO jobs VALUES ('OldFinished001', {q(owner)}, 'job.completed', 'input.transferred', 100, "
        f"{q(json.dumps(finished_spec))}, NULL, NULL, {now - 60000}, {now - 30000}, NULL, NULL, 1);",
        f"INSERT INTO jobs VALUES ('OldQueued00001', {q(owner)}, 'job.starting', 'input.starting', 0, "
        f"{q(json.dumps(queued_spec))}, NULL, NULL, {now - 1000}, NULL, NULL, NULL, 0);",
    ]
    for i, (kind, status) in enumerate(OUTPUT_STATUSES):
        rows.append(f"INSERT INTO outputs (job_id, position, key, format, output_type, status, url) VALUES "
                    f"('OldFinished001', {i}, 'o{i}', 'mp4', '{kind}', '{status}', 'http://old/o{i}');")
    rows.append("INSERT INTO outputs (job_id, position, key, format, output_type, status) VALUES "
                "('OldQueued00001', 0, 'mp4:240p', 'mp4:240p', 'video', 'video.waiting');")
    rows.append(f"INSERT INTO events (job_id, event, payload, created_at, pending, attempts, next_attempt_at) VALUES "
                f"('OldFinished001', 'job.completed', '{{}}', {now - 30000}, false, 1, {now - 30000});")
    return "\n".join(rows)


def check_upgraded(server):
    finished = server.get_job("OldFinished001").json()
    assert finished["status"] == "job.completed", finished
    assert [o["status"] for o in finished["outputs"]] == [s for _, s in OUTPUT_STATUSES]
    assert finished["outputs"][0]["url"] == "http://old/o0"
    # The queued job runs on the upgraded schema.
    final = server.wait_job("OldQueued00001")
    assert final["status"] == "job.completed", final
    assert final["outputs"][0]["status"] == "video.encoded"
    return final


def test_an_old_sqlite_database_is_upgraded_in_place(tmp_path, media_server):
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / "copra.db")
    db.executescript(OLD_SCHEMA.format(serial="integer", autoincrement="AUTOINCREMENT") + old_rows(media_server))
    db.commit()
    db.close()
    server = Copra(data).start()
    try:
        final = check_upgraded(server)
        got = tmp_path / "up.mp4"
        import requests
        got.write_bytes(requests.get(final["outputs"][0]["url"], auth=(KEY_A, ""), timeout=10).content)
        assert any(s["codec_type"] == "video" for s in ffprobe(got)["streams"])
    finally:
        server.stop()
    db = sqlite3.connect(data / "copra.db")
    columns = [row[1] for row in db.execute("PRAGMA table_info(outputs)")]
    assert "state" in columns and "status" not in columns, columns
    applied = [row[0] for row in db.execute("SELECT version FROM seaql_migrations ORDER BY version")]
    assert len(applied) >= 3, applied
    # A second start applies nothing again and keeps the data.
    server = Copra(data).start()
    try:
        assert server.get_job("OldFinished001").json()["status"] == "job.completed"
    finally:
        server.stop()


def psql(sql, url=PG):
    subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", url, "-c", sql], check=True)


def test_an_old_postgres_database_is_upgraded_in_place_by_nodes_starting_at_once(tmp_path, media_server):
    schema = "copra_mig_" + uuid.uuid4().hex[:8]
    psql(f"CREATE SCHEMA {schema}")
    url = f"{PG}?options=-c%20search_path%3D{schema}"
    try:
        psql(f"SET search_path TO {schema};" + OLD_SCHEMA.format(serial="bigserial", autoincrement="") + old_rows(media_server))
        # Two nodes start on the same database at once: the migrations run once.
        # (Nodes of one cluster share its secret key.)
        key = uuid.uuid4().hex + uuid.uuid4().hex
        nodes = [Copra(tmp_path / name, {"COPRA_DATABASE_URL": url, "COPRA_SECRET_KEY": key}) for name in ("one", "two")]
        errors = []

        def start(node):
            try:
                node.start()
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
        threads = [threading.Thread(target=start, args=(node,)) for node in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert not errors, errors
            check_upgraded(nodes[0])
        finally:
            for node in nodes:
                node.stop()
        out = subprocess.run(["psql", "-tA", PG, "-c", f"SELECT count(*) FROM {schema}.seaql_migrations"],
                             check=True, capture_output=True, text=True).stdout.strip()
        assert int(out) >= 3
        columns = subprocess.run(["psql", "-tA", PG, "-c",
                                  f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = 'outputs'"],
                                 check=True, capture_output=True, text=True).stdout.split()
        assert "state" in columns and "status" not in columns, columns
    finally:
        psql(f"DROP SCHEMA {schema} CASCADE")
