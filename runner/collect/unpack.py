"""Collecting a site's results: what to download, and unpacking a result zip safely.

fedflow fetched run 1 step 1 only and skipped a missing result silently; here the plan is made
from every run and step the controller lists, results and logs alike, as a pure function.
A result zip comes from an app container, that is from code the runner does not control, so it
is checked (a real zip, CRCs, sizes) and unpacked member by member, refusing anything that
could land outside its folder (absolute paths, `..`, symlinks), into a temporary folder that
is renamed into place only when everything is unpacked.

Layout under the run dir:
    sites/<site>/run<n>/results_step<s>.zip   the zip as downloaded
    sites/<site>/run<n>/step<s>/...           its files
    sites/<site>/run<n>/log_step<s>.txt       the step's log
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

from fcapi.models import ProjectRun
from runner.engine.checkpoint import CollectedFile
from runner.errors import RunnerError

#: generous for FeatureCloud's outputs, small enough that a laptop survives a zip bomb
MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 1024**3
MAX_TOTAL_BYTES = 1024**3
MAX_RUN_BYTES = 4 * 1024**3
MAX_RATIO = 200  # uncompressed / compressed, for members of 1 MiB and more
_CHUNK = 1 << 20
_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_UNITS |= {"kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_SIZE = re.compile(r"(\d{1,15})\s*([a-z]*)")
#: one unpacking at a time in this process: the run's budget is read from the disk, and two
#: sites' zips checked against it at once could each take all of it
_RUN_LOCK = threading.Lock()


def parse_size(value: object) -> int:
    """`"1GiB"`, `"512MiB"`, `"10MB"` or a number of bytes, as bytes (positive, at most 1 PiB)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a size like 1GiB, 512MiB or a number of bytes")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(value.strip().lower())
        if match is None or match.group(2) not in _UNITS:
            raise ValueError(f"{value[:40]!r} is not a size like 1GiB, 512MiB or 10MB")
        size = int(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < size <= 1024**5:
        raise ValueError("a size must be more than 0 bytes and at most 1 PiB")
    return size


Size = Annotated[int, BeforeValidator(parse_size)]


class UnpackLimits(BaseModel):
    """What a run may unpack from its result zips (the workflow file's `[unpack]` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    member: Size = MAX_MEMBER_BYTES
    zip: Size = MAX_TOTAL_BYTES
    run: Size = MAX_RUN_BYTES


class UnsafeArchive(RunnerError):
    """A result zip that was refused; one line naming the zip and the member."""


class Download(BaseModel):
    """One file to fetch from a site's controller."""

    model_config = ConfigDict(frozen=True)

    site: str
    kind: Literal["result", "log"]
    run: int
    step: int
    #: relative to the run dir, POSIX separators
    path: str
    #: for results: the folder the zip is unpacked into, relative to the run dir
    extract_to: str | None = None


def site_dir(site: str) -> PurePosixPath:
    return PurePosixPath("sites") / site


def plan_downloads(site: str, runs: Sequence[ProjectRun]) -> list[Download]:
    """Every result and log the controller lists for a project, oldest run and step first."""
    plan: list[Download] = []
    for run in sorted(runs, key=lambda r: r.runNr):
        base = site_dir(site) / f"run{run.runNr}"
        for step in sorted(set(run.resultSteps)):
            plan.append(
                Download(
                    site=site,
                    kind="result",
                    run=run.runNr,
                    step=step,
                    path=str(base / f"results_step{step}.zip"),
                    extract_to=str(base / f"step{step}"),
                )
            )
        for step in sorted(set(run.logSteps)):
            plan.append(
                Download(
                    site=site,
                    kind="log",
                    run=run.runNr,
                    step=step,
                    path=str(base / f"log_step{step}.txt"),
                )
            )
    return plan


def pending_downloads(plan: Sequence[Download], done: Sequence[CollectedFile]) -> list[Download]:
    """What a resumed collection still has to fetch: `plan` less what the state records."""
    have = {(c.kind, c.run, c.step) for c in done}
    return [d for d in plan if (d.kind, d.run, d.step) not in have]


def collected_entry(item: Download, run_dir: Path, extracted: Sequence[Path] = ()) -> CollectedFile:
    """The checkpoint's record of a finished download (and, for a result, what it unpacked)."""
    return CollectedFile(
        kind=item.kind,
        run=item.run,
        step=item.step,
        path=item.path,
        size=(run_dir / item.path).stat().st_size,
        files=sorted(p.relative_to(run_dir).as_posix() for p in extracted),
    )


def missing_results(runs: Sequence[ProjectRun]) -> bool:
    """Whether the controller lists no result at all: a finished project without one failed."""
    return not any(run.resultSteps for run in runs)


def _check_member(
    zip_path: Path, info: zipfile.ZipInfo, target: Path, limits: UnpackLimits
) -> Path | None:
    """The member's destination, None for a directory entry, or `UnsafeArchive`."""
    name = info.filename
    where = f"{zip_path.name}: member {name[:200]!r}"
    if "\\" in name or "\x00" in name or "\n" in name or "\r" in name:
        raise UnsafeArchive(f"{where}: backslash, newline or NUL in the name")
    posix = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"{where}: absolute path")
    if ".." in posix.parts:
        raise UnsafeArchive(f"{where}: '..' in the path")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UnsafeArchive(f"{where}: symbolic link")
    kind = stat.S_IFMT(mode)  # 0 when the zip tool recorded no type (most do not)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeArchive(f"{where}: not a regular file")
    dest = (target / posix).resolve()
    root = target.resolve()
    if dest != root and root not in dest.parents:
        raise UnsafeArchive(f"{where}: resolves outside the result folder")
    if dest == root and not info.is_dir():
        raise UnsafeArchive(f"{where}: no file name")
    if info.is_dir():
        return None
    if info.file_size > limits.member:
        raise UnsafeArchive(f"{where}: {info.file_size} bytes, over {limits.member} per file")
    if info.file_size >= _CHUNK and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise UnsafeArchive(f"{where}: compressed over {MAX_RATIO}:1 (a zip bomb?)")
    return dest


def run_dir_of(target: Path) -> Path | None:
    """The run folder a result folder is in (`<run>/sites/<site>/run<n>/step<s>`), if any."""
    return next((p.parent for p in target.parents if p.name == "sites"), None)


def unpacked_bytes(run_dir: Path | None, but: Path) -> int:
    """What the run's result folders hold already, but for `but` (about to be replaced)."""
    if run_dir is None:
        return 0
    total = 0
    for folder in (run_dir / "sites").glob("*/run*/step*"):
        if folder == but or not folder.is_dir() or folder.is_symlink():
            continue
        for base, _, files in os.walk(folder):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(base, name)).st_size
    return total


def _check_sizes(
    zip_path: Path, infos: list[zipfile.ZipInfo], limits: UnpackLimits, room: int
) -> None:
    """Refuse on the declared sizes, before anything is written."""
    name = zip_path.name
    total = sum(i.file_size for i in infos)
    if total > limits.zip:
        raise UnsafeArchive(f"{name}: {total} bytes unpacked, over {limits.zip} per zip")
    if total > room:
        raise UnsafeArchive(
            f"{name}: {total} bytes unpacked, over the {room} bytes left of {limits.run} per run"
        )
    packed = sum(i.compress_size for i in infos)
    if total >= _CHUNK and total > MAX_RATIO * max(packed, 1):
        raise UnsafeArchive(f"{name}: compressed over {MAX_RATIO}:1 in all (a zip bomb?)")


def extract_result(
    zip_path: Path,
    target: Path,
    *,
    limits: UnpackLimits | None = None,
    max_members: int = MAX_MEMBERS,
    max_total_bytes: int | None = None,
) -> list[Path]:
    """Verify `zip_path` and unpack it into `target` (replaced whole); the files, sorted.

    On any refusal nothing is left behind: `target` keeps what it had before. `limits` are the
    workflow's (`Workflow.unpack`), the defaults when not given; `max_total_bytes` overrides the
    per-zip one.
    """
    run_dir = run_dir_of(target)
    limits = limits or UnpackLimits()
    if max_total_bytes is not None:
        limits = limits.model_copy(update={"zip": max_total_bytes})
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise UnsafeArchive(f"{zip_path.name}: not a zip file") from None
    except FileNotFoundError:
        raise UnsafeArchive(f"{zip_path.name}: missing") from None
    with archive, _RUN_LOCK:
        infos = archive.infolist()
        if len(infos) > max_members:
            raise UnsafeArchive(f"{zip_path.name}: {len(infos)} members, over {max_members}")
        budget = _Budget(zip_path.name, limits, limits.run - unpacked_bytes(run_dir, target))
        _check_sizes(zip_path, infos, limits, budget.room)
        names = [i.filename.rstrip("/") for i in infos]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UnsafeArchive(f"{zip_path.name}: member {dupes[0][:200]!r} appears twice")
        return _unpack_into(archive, zip_path, infos, target, budget)


class _Budget:
    """Bytes actually written, counted against every limit: declared sizes can lie."""

    def __init__(self, name: str, limits: UnpackLimits, room: int) -> None:
        self.name, self.limits, self.room, self.written = name, limits, room, 0

    def take(self, member: str, member_bytes: int, more: int) -> None:
        self.written += more
        where = f"{self.name}: member {member[:200]!r}"
        if member_bytes > self.limits.member:
            raise UnsafeArchive(f"{where}: over {self.limits.member} bytes per file")
        if self.written > self.limits.zip:
            raise UnsafeArchive(f"{where}: the zip unpacks to over {self.limits.zip} bytes")
        if self.written > self.room:
            raise UnsafeArchive(f"{where}: the run would unpack over {self.limits.run} bytes")


def _unpack_into(
    archive: zipfile.ZipFile,
    zip_path: Path,
    infos: list[zipfile.ZipInfo],
    target: Path,
    budget: _Budget,
) -> list[Path]:
    """Test CRCs, unpack into a staging folder, swap it into place; staging goes on failure."""
    try:
        bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise UnsafeArchive(f"{zip_path.name}: unreadable: {exc}") from None
    if bad is not None:
        raise UnsafeArchive(f"{zip_path.name}: member {bad[:200]!r}: CRC mismatch")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        try:
            written = _unpack(archive, zip_path, infos, staging, budget)
        except OSError as exc:  # e.g. a member "a" and a member "a/b"
            raise UnsafeArchive(f"{zip_path.name}: cannot unpack: {exc.strerror}") from None
        except (zipfile.BadZipFile, EOFError) as exc:
            raise UnsafeArchive(f"{zip_path.name}: unreadable: {exc}") from None
        _replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(target / p.relative_to(staging) for p in written)


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    with archive.open(info) as src:
        while chunk := src.read(_CHUNK):
            yield chunk


def _unpack(
    archive: zipfile.ZipFile,
    zip_path: Path,
    infos: list[zipfile.ZipInfo],
    staging: Path,
    budget: _Budget,
) -> list[Path]:
    written: list[Path] = []
    for info in infos:
        dest = _check_member(zip_path, info, staging, budget.limits)
        if dest is None:
            (staging / info.filename).mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        # O_EXCL + O_NOFOLLOW: never write through something that appeared in the meantime
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(archive, info):
                size += len(chunk)
                if size > info.file_size:
                    raise UnsafeArchive(
                        f"{zip_path.name}: member {info.filename[:200]!r}: "
                        "longer than its header says"
                    )
                budget.take(info.filename, size, len(chunk))
                out.write(chunk)
        written.append(dest)
    return written


def _replace_dir(staging: Path, target: Path) -> None:
    """Swap the unpacked folder into place; an older copy (an earlier attempt) goes."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    if target.exists():
        old = target.with_name(f".{target.name}.old.tmp")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(target)
    with contextlib.suppress(OSError):
        target.chmod(0o755)
