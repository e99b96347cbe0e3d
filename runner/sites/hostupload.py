"""Stream a file that lives on a site's host to that host's own controller.

Why a program of its own: a partner's data must never leave its host, so the runner cannot
fetch it and post it itself. Instead this file is sent on stdin to the host's python3
(`python3 - PORT PROJECT_ID HOST_PATH FILE_NAME`), which posts the file to
`http://127.0.0.1:PORT/file-upload/` exactly as the FeatureCloud website's page does (raw body,
`Origin: https://featurecloud.ai`). It uses only the standard library so that any host with a
python3 can run it, reads the file in blocks so memory stays flat for any size, and prints the
number of bytes sent as its last line of stdout. Errors go to stderr with a non-zero exit.
"""

from __future__ import annotations

import http.client
import os
import sys
import urllib.parse
from typing import BinaryIO

BLOCK = 1 << 20
TIMEOUT = 600.0


class CountingReader:
    """A file wrapper that counts what http.client reads from it, block by block."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        block = self.raw.read(BLOCK if size is None or size < 0 else size)
        self.count += len(block)
        return block


def upload(port: int, project_id: str, host_path: str, file_name: str) -> int:
    """POST the file's bytes to the controller; return how many were sent."""
    size = os.path.getsize(host_path)
    query = urllib.parse.urlencode(
        {"projectId": project_id, "fileName": file_name, "finalize": "", "consent": ""}
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT, blocksize=BLOCK)
    try:
        with open(host_path, "rb") as raw:
            reader = CountingReader(raw)
            conn.request(
                "POST",
                "/file-upload/?" + query,
                body=reader,
                headers={
                    "Content-Length": str(size),
                    "Content-Type": "application/octet-stream",
                    "Origin": "https://featurecloud.ai",
                },
            )
            response = conn.getresponse()
            body = response.read(2000)
        if not 200 <= response.status < 300:
            raise RuntimeError(
                f"controller answered {response.status} {response.reason}: "
                + body.decode("utf-8", "replace")[:300]
            )
        if reader.count != size:
            raise RuntimeError(f"sent {reader.count} bytes of {size}: the file changed")
        return reader.count
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python3 - PORT PROJECT_ID HOST_PATH FILE_NAME", file=sys.stderr)
        return 2
    port, project_id, host_path, file_name = argv
    try:
        sent = upload(int(port), project_id, host_path, file_name)
    except (OSError, RuntimeError, ValueError, http.client.HTTPException) as exc:
        print(f"hostupload: {host_path}: {exc}", file=sys.stderr)
        return 1
    print(sent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
