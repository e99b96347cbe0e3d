"""Small servers and polls the transport tests share.

An upload sink stands in for a controller's `POST /file-upload/` (it counts and hashes what it
receives, without keeping it), and `http.server` stands in for a controller's `/ping/` until
the emulator's controller is available: enough to prove start, tunnel and stop.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

from runner.demo import free_ports

UPLOAD_SINK = r"""
import hashlib, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port, record = int(sys.argv[1]), sys.argv[2]

class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        left = int(self.headers["Content-Length"])
        digest, count = hashlib.sha256(), 0
        while left:
            block = self.rfile.read(min(left, 1 << 20))
            if not block:
                break
            digest.update(block); count += len(block); left -= len(block)
        with open(record, "w") as out:
            json.dump({"path": self.path, "bytes": count, "sha256": digest.hexdigest(),
                       "origin": self.headers.get("Origin")}, out)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()

    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", port), Sink).serve_forever()
"""


def write_sink(directory: Path) -> Path:
    path = directory / "upload_sink.py"
    path.write_text(UPLOAD_SINK)
    return path


def free_port() -> int:
    return free_ports(1)[0]


def http_server_start(python: str = "python3") -> str:
    """A start template: a static server on the host's 127.0.0.1:{port} serving {data_dir}.

    It records its pid beside the data dir so the matching stop template can end it.
    """
    return (
        "echo $$ > {data_dir}.pid; exec "
        + python
        + " -m http.server {port} --bind 127.0.0.1 --directory {data_dir}"
    )


HTTP_SERVER_STOP = (
    "if [ -f {data_dir}.pid ]; then kill $(cat {data_dir}.pid); rm -f {data_dir}.pid; fi"
)


async def wait_http(url: str, *, deadline: float, who: str, want: int = 200) -> httpx.Response:
    """GET `url` with backoff until it answers `want`; the error names who it waited for."""
    end = time.monotonic() + deadline
    pause = 0.02
    last = "no answer"
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        while True:
            try:
                response = await client.get(url)
                if response.status_code == want:
                    return response
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if time.monotonic() > end:
                raise TimeoutError(f"{who} did not answer {want} at {url} in {deadline} s: {last}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.3)


async def wait_http_gone(url: str, *, deadline: float, who: str) -> None:
    """Poll until `url` no longer answers at all (the server behind it has stopped)."""
    end = time.monotonic() + deadline
    pause = 0.02
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        while True:
            try:
                await client.get(url)
            except httpx.HTTPError:
                return
            if time.monotonic() > end:
                raise TimeoutError(f"{who} still answers at {url} after {deadline} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.3)


def read_record(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


PYTHON = sys.executable
