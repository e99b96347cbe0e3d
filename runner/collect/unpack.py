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
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict

from fcapi.models import ProjectRun
from runner.engine.checkpoint import CollectedFile
from runner.errors import RunnerError

#: generous for FeatureCloud's outputs, small enough that a zip bomb cannot fill the disk
MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 8 * 1024**3
MAX_RATIO = 200  # uncompressed / compressed, for members over 1 MiB
_CHUNK = 1 << 20


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


def _check_member(zip_path: Path, info: zipfile.ZipInfo, target: Path) -> Path | None:
    """The member's destination, None for a directory entry, or `UnsafeArchive`."""
    name = info.filename
    where = f"{zip_path.name}: member {name!r}"
    if "\\" in name or "\x00" in name:
        raise UnsafeArchive(f"{where}: backslash or NUL in the name")
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
    if info.file_size > MAX_MEMBER_BYTES:
        raise UnsafeArchive(f"{where}: {info.file_size} bytes, over {MAX_MEMBER_BYTES}")
    if info.file_size > _CHUNK and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise UnsafeArchive(f"{where}: compressed over {MAX_RATIO}:1 (a zip bomb?)")
    return dest


def extract_result(
    zip_path: Path,
    target: Path,
    *,
    max_members: int = MAX_MEMBERS,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> list[Path]:
    """Verify `zip_path` and unpack it into `target` (replaced whole); the files, sorted.

    On any refusal nothing is left behind: `target` keeps what it had before.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise UnsafeArchive(f"{zip_path.name}: not a zip file") from None
    except FileNotFoundError:
        raise UnsafeArchive(f"{zip_path.name}: missing") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > max_members:
            raise UnsafeArchive(f"{zip_path.name}: {len(infos)} members, over {max_members}")
        total = sum(i.file_size for i in infos)
        if total > max_total_bytes:
            raise UnsafeArchive(f"{zip_path.name}: {total} bytes unpacked, over {max_total_bytes}")
        names = [i.filename.rstrip("/") for i in infos]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UnsafeArchive(f"{zip_path.name}: member {dupes[0]!r} appears twice")
        try:
            bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise UnsafeArchive(f"{zip_path.name}: unreadable: {exc}") from None
        if bad is not None:
            raise UnsafeArchive(f"{zip_path.name}: member {bad!r}: CRC mismatch")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        )
        try:
            try:
                written = _unpack(archive, zip_path, infos, staging)
            except OSError as exc:  # e.g. a member "a" and a member "a/b"
                raise UnsafeArchive(f"{zip_path.name}: cannot unpack: {exc.strerror}") from None
            _replace_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return sorted(target / p.relative_to(staging) for p in written)


def _unpack(
    archive: zipfile.ZipFile, zip_path: Path, infos: list[zipfile.ZipInfo], staging: Path
) -> list[Path]:
    written: list[Path] = []
    for info in infos:
        dest = _check_member(zip_path, info, staging)
        if dest is None:
            (staging / info.filename).mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        remaining = info.file_size
        # O_EXCL + O_NOFOLLOW: never write through something that appeared in the meantime
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as out, archive.open(info) as src:
            while chunk := src.read(_CHUNK):
                remaining -= len(chunk)
                if remaining < 0:
                    raise UnsafeArchive(
                        f"{zip_path.name}: member {info.filename!r}: longer than its header says"
                    )
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
