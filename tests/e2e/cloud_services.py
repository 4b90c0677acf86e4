"""Real cloud-storage servers on loopback for the storage-cloud tests, each with its own
client: Azurite (Azure Blob, npm, tests/services) checked with azure-storage-blob, and
gcp-storage-emulator (GCS JSON API, PyPI) checked with google-cloud-storage.

Each provider fixture gives the same small interface: `storage(path)` (a job's storage
block), `put(key, file)`, `get(key, file)` (the service's own client), `url(key)`
(the object's URL), `bad` (storage blocks with missing or malformed credentials and the
field each error must name) and `secrets` (strings that must never show)."""

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from conftest import ROOT, free_port, wait_until

AZURITE = ROOT / "tests" / "services" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's one well-known development account (public, documented by Microsoft).
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _serve(cmd, url, what, log: Path, env=None):
    out = open(log, "wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            return requests.get(url, timeout=1).status_code < 500
        except requests.RequestException:
            return False

    wait_until(up, 60, what)
    return proc, out


def _stop(proc, out):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    out.close()


class Azure:
    def __init__(self, endpoint: str):
        from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

        self.endpoint = endpoint
        self.container = "copra-out"
        self.service = BlobServiceClient(endpoint, credential={"account_name": AZ_ACCOUNT, "account_key": AZ_KEY})
        self.client = self.service.get_container_client(self.container)
        self.client.create_container()
        self.sas = generate_container_sas(AZ_ACCOUNT, self.container, account_key=AZ_KEY,
                                          permission=ContainerSasPermissions(read=True, write=True, create=True, add=True, list=True, delete=True),
                                          expiry=datetime.now(timezone.utc) + timedelta(hours=2))
        self.secrets = [AZ_KEY, self.sas.split("sig=")[1].split("&")[0]]

    def storage(self, path, sas=False):
        creds = {"account_name": AZ_ACCOUNT, "sas_token": self.sas} if sas else {"account": AZ_ACCOUNT, "access_key": AZ_KEY}
        return {"service": "azure", "container": self.container, "path": path, "endpoint": self.endpoint, "credentials": creds}

    def put(self, key, file):
        with open(file, "rb") as f:
            self.client.upload_blob(key, f, overwrite=True)

    def get(self, key, file):
        Path(file).write_bytes(self.client.download_blob(key).readall())

    def url(self, key):
        return f"{self.endpoint}/{self.container}/{key}"

    def keys(self, prefix):
        return sorted(b.name for b in self.client.list_blobs(name_starts_with=prefix))

    def bad(self):
        base = {"service": "azure", "container": self.container, "endpoint": self.endpoint}
        return [
            (dict(base), "credentials"),
            (dict(base, credentials={"access_key": AZ_KEY}), "account_name"),
            (dict(base, credentials={"account_name": AZ_ACCOUNT}), "account_key"),
            (dict(base, credentials={"account_name": AZ_ACCOUNT, "account_key": 12}), "account_key"),
            (dict(base, credentials={"account_name": AZ_ACCOUNT, "account_key": "not base64!"}), "account_key"),
        ]

    def wrong(self, path):
        """Well-formed credentials the server refuses: the job fails, at upload."""
        block = self.storage(path)
        block["credentials"] = {"account_name": AZ_ACCOUNT, "account_key": "d3Jvbmcta2V5LXdyb25nLWtleQ=="}
        return block, "d3Jvbmcta2V5LXdyb25nLWtleQ=="


@pytest.fixture(scope="module")
def azure(tmp_path_factory):
    assert AZURITE.exists(), f"{AZURITE} is missing (run scripts/setup.sh --tests)"
    work = tmp_path_factory.mktemp("azurite")
    port = free_port()
    cmd = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(work),
           "--silent", "--skipApiVersionCheck", "--loose"]
    endpoint = f"http://127.0.0.1:{port}/{AZ_ACCOUNT}"
    proc, out = _serve(cmd, f"{endpoint}?comp=list", "Azurite", work / "azurite.log")
    yield Azure(endpoint)
    _stop(proc, out)


# A service account key of the right shape. The emulator takes any bearer token, and
# Google's token endpoint is not reachable from a test machine, so jobs authenticate with
# an OAuth2 `token`; the service account's shape is what submit-time checks look at.
SA_PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


class Gcs:
    def __init__(self, endpoint: str):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        self.endpoint = endpoint
        self.bucket_name = "copra-out"
        self.token = "ya29.copra-test-" + os.urandom(8).hex()
        self.client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                     client_options={"api_endpoint": endpoint})
        self.bucket = self.client.create_bucket(self.bucket_name)
        self.secrets = [self.token]

    def storage(self, path):
        return {"service": "gcs", "bucket": self.bucket_name, "path": path, "endpoint": self.endpoint,
                "credentials": {"token": self.token}}

    def put(self, key, file):
        self.bucket.blob(key).upload_from_filename(str(file))

    def get(self, key, file):
        self.bucket.blob(key).download_to_filename(str(file))

    def url(self, key):
        return f"{self.endpoint}/{self.bucket_name}/{key}"

    def keys(self, prefix):
        return sorted(b.name for b in self.client.list_blobs(self.bucket_name, prefix=prefix))

    def bad(self):
        base = {"service": "gcs", "bucket": self.bucket_name, "endpoint": self.endpoint}
        sa = {"type": "service_account", "client_email": "copra@test.iam.gserviceaccount.com", "private_key": SA_PEM}
        return [
            (dict(base), "credentials"),
            (dict(base, credentials={}), "service_account"),
            (dict(base, credentials={"service_account": "{not json"}), "service_account"),
            (dict(base, credentials={"service_account": dict(sa, client_email="")}), "client_email"),
            (dict(base, credentials={"service_account": dict(sa, type="external_account")}), "service_account"),
        ]


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    exe = shutil.which("gcp-storage-emulator") or str(ROOT / ".venv" / "bin" / "gcp-storage-emulator")
    assert Path(exe).exists(), "gcp-storage-emulator is not installed (run scripts/setup.sh --tests)"
    work = tmp_path_factory.mktemp("gcs")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc, out = _serve([exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
                       f"{endpoint}/storage/v1/b", "gcp-storage-emulator", work / "gcs.log",
                       env=dict(os.environ, STORAGE_EMULATOR_HOST=endpoint))
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    yield Gcs(endpoint)
    os.environ.pop("STORAGE_EMULATOR_HOST", None)
    _stop(proc, out)


class SwiftRecording:
    """Rackspace Cloud Files as recorded: the identity service's Keystone v2 sign-in with
    API-key credentials (the answer's shape as Rackspace gives it) and Swift's object API
    (PUT, GET with ranges, HEAD, DELETE under `/v1/{account}/{container}/{object}`),
    served over loopback. No OpenStack Swift server runs here: its PyPI package needs a
    ring, rsync and XFS-style devices, so this is the exchange, not the server."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import threading

        self.user = "copra-user"
        self.api_key = "rax-" + os.urandom(12).hex()
        self.token = "AAA" + os.urandom(16).hex()
        self.account = "MossoCloudFS_0123"
        self.container = "copra-out"
        self.objects = {}
        self.sign_ins = 0
        rig = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v2.0/tokens":
                    return self.reply(404)
                creds = json.loads(raw).get("auth", {}).get("RAX-KSKEY:apiKeyCredentials", {})
                if creds != {"username": rig.user, "apiKey": rig.api_key}:
                    return self.reply(401, b'{"unauthorized":{"code":401,"message":"Username or api key is invalid."}}')
                rig.sign_ins += 1
                store = lambda region: {"region": region, "tenantId": rig.account,
                                        "publicURL": f"{rig.base}/v1/{rig.account}" if region == "DFW" else f"https://storage101.{region.lower()}1.clouddrive.com/v1/{rig.account}",
                                        "internalURL": f"https://snet-storage101.{region.lower()}1.clouddrive.com/v1/{rig.account}"}
                answer = {"access": {
                    "token": {"id": rig.token, "expires": "2099-01-01T00:00:00.000Z", "tenant": {"id": "123", "name": "123"}},
                    "serviceCatalog": [
                        {"name": "cloudServersOpenStack", "type": "compute", "endpoints": [{"region": "DFW", "publicURL": "https://dfw.servers.api.rackspacecloud.com/v2/123"}]},
                        {"name": "cloudFiles", "type": "object-store", "endpoints": [store("ORD"), store("DFW")]},
                    ],
                    "user": {"id": "1", "name": rig.user, "roles": []}}}
                self.reply(200, json.dumps(answer).encode(), [("Content-Type", "application/json")])

            def object_name(self):
                prefix = f"/v1/{rig.account}/{rig.container}/"
                path = self.path.split("?", 1)[0]
                if self.headers.get("X-Auth-Token") != rig.token:
                    self.reply(401)
                    return None
                if not path.startswith(prefix):
                    self.reply(404)
                    return None
                from urllib.parse import unquote
                return unquote(path[len(prefix):])

            def do_PUT(self):
                name = self.object_name()
                if name is not None:
                    rig.objects[name] = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                    self.reply(201, headers=[("ETag", "x")])

            def do_GET(self):
                name = self.object_name()
                if name is None:
                    return
                if name not in rig.objects:
                    return self.reply(404)
                data = rig.objects[name]
                head = [("Content-Type", "application/octet-stream"), ("ETag", "x"),
                        ("Last-Modified", "Thu, 26 Nov 2026 00:00:00 GMT")]
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start, _, end = rng[6:].partition("-")
                    start, end = int(start or 0), int(end) if end else len(data) - 1
                    part = data[start:end + 1]
                    return self.reply(206, part, head + [("Content-Range", f"bytes {start}-{start + len(part) - 1}/{len(data)}")])
                self.reply(200, data, head)

            do_HEAD = do_GET

            def do_DELETE(self):
                name = self.object_name()
                if name is not None:
                    rig.objects.pop(name, None)
                    self.reply(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.secrets = [self.api_key, self.token]

    def storage(self, path):
        return {"service": "rackspace", "region": "DFW", "container": self.container, "path": path,
                "auth_url": f"{self.base}/v2.0", "credentials": {"username": self.user, "api_key": self.api_key}}

    def _url(self, key):
        return f"{self.base}/v1/{self.account}/{self.container}/{key}"

    def put(self, key, file):
        r = requests.put(self._url(key), data=Path(file).read_bytes(), headers={"X-Auth-Token": self.token}, timeout=10)
        assert r.status_code == 201, r.text

    def get(self, key, file):
        r = requests.get(self._url(key), headers={"X-Auth-Token": self.token}, timeout=10)
        assert r.status_code == 200, r.status_code
        Path(file).write_bytes(r.content)

    def url(self, key):
        return self._url(key)

    def keys(self, prefix):
        return sorted(k for k in self.objects if k.startswith(prefix))

    def bad(self):
        base = {"service": "rackspace", "region": "DFW", "container": self.container, "auth_url": f"{self.base}/v2.0"}
        return [
            (dict(base), "credentials"),
            (dict(base, credentials={"api_key": self.api_key}), "username"),
            (dict(base, credentials={"username": self.user}), "api_key"),
            (dict(base, credentials={"username": self.user, "api_key": 42}), "api_key"),
        ]


@pytest.fixture(scope="module")
def rackspace():
    rig = SwiftRecording()
    yield rig
    rig.server.shutdown()
