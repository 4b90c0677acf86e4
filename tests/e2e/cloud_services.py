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

    def source(self, key):
        return dict({k: v for k, v in self.storage("").items() if k != "path"}, key=key)

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

    def source(self, key):
        return dict({k: v for k, v in self.storage("").items() if k != "path"}, key=key)

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

    def source(self, key):
        return dict({k: v for k, v in self.storage("").items() if k != "path"}, key=key)

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


class Sftp:
    """OpenSSH's sshd (Debian's openssh-server), run by the test as root on a loopback
    port with its own config, a generated host key and a generated user key; checked
    with OpenSSH's `sftp` client, the host key pinned in its own known_hosts file."""

    def __init__(self, work: Path, port: int):
        self.work = work
        self.port = port
        self.base = str(work / "files")
        Path(self.base).mkdir()
        self.user = "root"
        self.private_key = (work / "user_key").read_text()
        self.fingerprint = subprocess.run(["ssh-keygen", "-lf", str(work / "host_key.pub")], check=True,
                                          capture_output=True, text=True).stdout.split()[1]
        (work / "known_hosts").write_text(f"[127.0.0.1]:{port} " + (work / "host_key.pub").read_text())
        self.secrets = [line for line in self.private_key.splitlines() if line and not line.startswith("-----")][:3]

    def storage(self, path):
        return {"service": "sftp", "host": "127.0.0.1", "port": self.port, "fingerprint": self.fingerprint,
                "path": self.base + path, "credentials": {"username": self.user, "private_key": self.private_key}}

    def source(self, key):
        # An input's `path` would be its object's; the key is the path on the server.
        return dict({k: v for k, v in self.storage("").items() if k != "path"}, key=f"{self.base}/{key}")

    def _sftp(self, commands):
        subprocess.run(["sftp", "-q", "-i", str(self.work / "user_key"), "-P", str(self.port),
                        "-o", f"UserKnownHostsFile={self.work / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
                        "-o", "BatchMode=yes", "-b", "-", f"{self.user}@127.0.0.1"],
                       input=commands, text=True, check=True, capture_output=True, timeout=30)

    def put(self, key, file):
        parent = str(Path(self.base, key).parent)
        self._sftp(f"-mkdir {parent}\nput {file} {self.base}/{key}\n")

    def get(self, key, file):
        self._sftp(f"get {self.base}/{key} {file}\n")

    def url(self, key):
        return f"sftp://127.0.0.1:{self.port}{self.base}/{key}"

    def keys(self, prefix):
        root = Path(self.base)
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and str(p.relative_to(root)).startswith(prefix))

    def bad(self):
        base = {"service": "sftp", "host": "127.0.0.1", "port": self.port, "fingerprint": self.fingerprint, "path": self.base}
        return [
            (dict(base), "credentials"),
            (dict(base, credentials={"private_key": self.private_key}), "username"),
            (dict(base, credentials={"username": self.user}), "password"),
            (dict(base, credentials={"username": self.user, "private_key": "not a key"}), "private_key"),
            (dict(base, credentials={"username": self.user, "password": 1234}), "password"),
        ]


@pytest.fixture(scope="module")
def sftp(tmp_path_factory):
    sshd = Path("/usr/sbin/sshd")
    assert sshd.exists(), "sshd is not installed (run scripts/setup.sh --tests)"
    work = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"copra-test-{name}", "-f", str(work / name)], check=True)
    (work / "authorized_keys").write_text((work / "user_key.pub").read_text())
    port = free_port()
    (work / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {work / 'host_key'}", f"PidFile {work / 'sshd.pid'}",
        f"AuthorizedKeysFile {work / 'authorized_keys'}", "StrictModes no", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        "Subsystem sftp internal-sftp", "LogLevel VERBOSE", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    log = open(work / "sshd.log", "wb")
    proc = subprocess.Popen([str(sshd), "-D", "-e", "-f", str(work / "sshd_config")], stdout=log, stderr=subprocess.STDOUT)

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"sshd exited with {proc.returncode}: {(work / 'sshd.log').read_text()[-2000:]}")
        import socket
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                return s.recv(64).startswith(b"SSH-2.0")
        except OSError:
            return False

    wait_until(listening, 30, "sshd")
    yield Sftp(work, port)
    _stop(proc, log)
