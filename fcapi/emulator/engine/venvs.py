"""One virtual environment per `requirements.txt`, built once per machine and reused.

An image installs its requirements when it is built, not when it runs; the venv cache plays
that part. The key is the hash of the requirements file (and the Python that builds it), so an
app whose requirements change gets a fresh venv and two apps with the same requirements share
one. A file lock keeps the several controllers of one machine from building the same venv at
once; a marker written last tells a finished venv from one a killed build left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

#: where venvs live unless FEDSTACK_APP_VENVS says otherwise (survives between test runs)
DEFAULT_CACHE = Path.home() / ".cache" / "fedstack" / "app-venvs"
COMPLETE = ".fedstack-complete"
#: a cold build installs the engine with pandas and numpy from PyPI
BUILD_TIMEOUT = 1800.0


class VenvError(Exception):
    """The app's requirements could not be installed; the message says which file and why."""


def cache_dir() -> Path:
    return Path(os.environ.get("FEDSTACK_APP_VENVS") or DEFAULT_CACHE)


def venv_key(requirements: Path, python: str = sys.executable) -> str:
    """The cache key: the requirements' bytes and the Python version that builds the venv."""
    h = hashlib.sha256(requirements.read_bytes())
    h.update(f"\0{sys.version_info.major}.{sys.version_info.minor}\0{python}".encode())
    return h.hexdigest()[:20]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(app_dir: Path, *, python: str = sys.executable, log: Path | None = None) -> Path:
    """The venv for `app_dir/requirements.txt`, built now unless the cache has it; its path.

    Blocking (pip runs for minutes on a cold cache): call it from a thread.
    """
    requirements = app_dir / "requirements.txt"
    if not requirements.is_file():
        raise VenvError(f"{requirements} is missing: an app folder lists its packages there")
    venv = cache_dir() / venv_key(requirements, python)
    with _locked(venv.with_suffix(".lock")):
        if (venv / COMPLETE).is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        _build(venv, requirements, python, log)
        (venv / COMPLETE).write_text(f"{time.monotonic() - started:.1f}\n")
    return venv


def build_seconds(venv: Path) -> float | None:
    """How long the cold build of a cached venv took (what the benchmark reports)."""
    try:
        return float((venv / COMPLETE).read_text())
    except (OSError, ValueError):
        return None


def _build(venv: Path, requirements: Path, python: str, log: Path | None) -> None:
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        for what, cmd in (
            ("python -m venv", [python, "-m", "venv", str(venv)]),
            (
                f"pip install -r {requirements}",
                [
                    str(venv_python(venv)),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                    str(requirements),
                ],
            ),
        ):
            try:
                done = subprocess.run(
                    cmd, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT, check=False
                )
            except subprocess.TimeoutExpired:
                raise VenvError(f"{what} took longer than {BUILD_TIMEOUT:.0f} s") from None
            if done.returncode != 0:
                where = f" (its output is in {log})" if log is not None else ""
                raise VenvError(f"{what} failed with exit status {done.returncode}{where}")
    finally:
        if log is not None and not isinstance(out, int):
            out.close()
