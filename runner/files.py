"""Writing and hashing files so that a crash never leaves a half-written output behind.

Every file the runner produces (state, manifest, metrics, report) goes through `write_atomic`:
readers and a later `--resume` see either the old complete file or the new complete one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

_CHUNK = 1 << 20


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Replace `path` by `data` in one step: temp file in the same dir, fsync, rename.

    The mode is set on the temp file before any byte is written, so a 0600 file holding
    secrets is never readable by others, not even for a moment.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
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
