"""Writing and hashing files so that a crash never leaves a half-written file behind.

Every file fedstack produces (the runner's state, manifest, metrics and report, the CLI's
outputs, downloads from a controller) goes through `write_atomic` or `atomic_target`: readers
and a later `--resume` see either the old complete file or the new complete one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

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


#: why `read_bounded` refused a file
Refusal = Literal["missing", "stat", "folder", "special", "too_big", "read", "grew"]


class UnreadableFile(Exception):
    """Why `read_bounded` refused a file: the caller words it for its own kind of input.

    `detail` is the OS's reason (for missing, stat, read); `size` the bytes seen (too_big, grew).
    """

    def __init__(self, reason: Refusal, detail: str = "", size: int = 0) -> None:
        super().__init__(f"{reason}: {detail or size}")
        self.reason, self.detail, self.size = reason, detail, size


def read_bounded(path: Path, limit: int) -> bytes:
    """A small input file's bytes (a workflow, an inventory, a `.env`), never a hang or a flood.

    A folder, a FIFO (whose read would block) or a device (`/dev/zero` never ends) is refused
    before it is opened, a file over `limit` bytes before it is read, and one that grew past
    `limit` since its stat after at most `limit + 1` bytes.
    """
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise UnreadableFile("missing", exc.strerror or "") from None
    except OSError as exc:
        raise UnreadableFile("stat", exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise UnreadableFile("folder")
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile("special")
    if info.st_size > limit:
        raise UnreadableFile("too_big", size=info.st_size)
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise UnreadableFile("read", exc.strerror or str(exc)) from None
    if len(raw) > limit:
        raise UnreadableFile("grew", size=len(raw))
    return raw
