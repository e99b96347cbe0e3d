"""An emulated website or controller as a separate process, for tests that run a CLI's `main()`.

`main()` runs its own event loop (`asyncio.run`), so the server it talks to cannot live in the
test's loop; one process per test module keeps a table of a hundred bad inputs fast.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

PREFIX = "listening on "


@contextlib.contextmanager
def emulator_process(*args: str) -> Iterator[str]:
    """`python -m fcapi.emulator ARGS --host 127.0.0.1 --port 0`; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fcapi.emulator", *args, "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert PREFIX in line, f"the emulator did not start: {line!r}"
        yield line.split(PREFIX, 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
