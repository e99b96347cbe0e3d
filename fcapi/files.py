"""Writing and hashing files so that a crash never leaves a half-written file behind.

Every file fedstack produces (the runner's state, manifest, metrics and report, the CLI's
outputs, downloads from a controller) goes through `write_atomic` or `atomic_target`: readers
and a later `--resume` see either the old complete file or the new complete one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Replace `path` by `data` in one step: temp file in the same dir, fsync, rename.

    The mode is set on the temp file before any byte is written, so a 0600 file holding
    secrets is never readable by others, not even for a moment.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_target(path, mode) as handle:
        handle.write(payload)


@contextlib.contextmanager
def atomic_target(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """An open temp file that becomes `path` when the block ends without an error.

    For writers that stream (a download): on any exception, Ctrl-C included, the temp file is
    removed and `path` keeps what it had.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; some filesystems refuse to open a dir, which is fine."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large results cost no memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_temp_name(name: str) -> bool:
    """Whether a name is one of `write_atomic`'s (or a download's) leftovers after a crash."""
    return name.startswith(".") and name.endswith(".tmp")
