"""Hostile far servers on loopback for the bounded-read and dry-run tests: one that
answers every request with a body that never ends (counting the bytes it manages to
send), and one that serves a large MP4 whose index (`moov`) is at the end, answering
HTTP ranges or ignoring them, and counting every byte it serves.

Also a sampler of a process's resident memory (VmRSS of /proc/<pid>/status)."""

import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Endless:
    """Answers every request with `status` and a body that never ends: `prefix`, then
    `filler` over and over, as fast as the peer takes it. `sent` counts the bytes."""

    def __init__(self, status=200, prefix=b"", filler=b"x" * 65536, content_type="application/json"):
        self.status, self.prefix, self.filler, self.content_type = status, prefix, filler, content_type
        self.sent = 0
        self.requests = []
        rig = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                rig.requests.append((self.command, self.path))
                self.send_response(rig.status)
                self.send_header("Content-Type", rig.content_type)
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command == "HEAD":
                    return
                try:
                    self.wfile.write(rig.prefix)
                    rig.sent += len(rig.prefix)
                    while True:
                        self.wfile.write(rig.filler)
                        rig.sent += len(rig.filler)
                except OSError:
                    pass  # the peer stopped reading: good
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def moov_at_end_mp4(work: Path, padding: int) -> tuple[bytes, bytes, int]:
    """A real MP4 made by ffmpeg (without faststart, so `moov` is last), with a `free`
    box of `padding` bytes between its `mdat` and its `moov`: (head, tail, size), the
    file being head + zeros + tail. Offsets into `mdat` stay right, so it plays."""
    path = work / "small.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True)
    data = path.read_bytes()
    at, boxes = 0, []
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        boxes.append((kind, at, size))
        at += size
    moov = next(b for b in boxes if b[0] == b"moov")
    assert moov == boxes[-1], f"moov is not last: {boxes}"
    head = data[:moov[1]] + struct.pack(">I4s", padding + 8, b"free")
    tail = data[moov[1]:]
    return head, tail, len(head) + padding + len(tail)


class BigMedia:
    """Serves one virtual file, head + zeros + tail, at `/big.mp4`; answers `Range`
    unless `ranges` is False. `served` counts the body bytes sent."""

    def __init__(self, head: bytes, tail: bytes, size: int, delay: float = 0.0):
        self.head, self.tail, self.size, self.delay = head, tail, size, delay
        self.ranges = True
        self.served = 0
        self.lock = threading.Lock()
        rig = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if rig.delay:
                    time.sleep(rig.delay)
                start, end = 0, rig.size - 1
                wanted = self.headers.get("Range")
                if rig.ranges and wanted and wanted.startswith("bytes="):
                    first, _, last = wanted[6:].partition("-")
                    start, end = int(first or 0), min(int(last) if last else rig.size - 1, rig.size - 1)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{rig.size}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                at = start
                try:
                    while at <= end:
                        piece = rig.piece(at, min(end + 1, at + 65536))
                        self.wfile.write(piece)
                        with rig.lock:
                            rig.served += len(piece)
                        at += len(piece)
                except OSError:
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/big.mp4"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def piece(self, start, end):
        """Bytes start..end of the virtual file (never more than one part of it)."""
        tail_at = self.size - len(self.tail)
        if start < len(self.head):
            return self.head[start:min(end, len(self.head))]
        if start >= tail_at:
            return self.tail[start - tail_at:end - tail_at]
        return bytes(min(end, tail_at) - start)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class RssSampler:
    """Samples the VmRSS of `pid` every 50 ms from start to stop; `peak` in bytes."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.samples = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)
                        self.samples += 1
            except OSError:
                return
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
