"""fedstack and the FeatureCloud CLI as wheels, for a VM that reaches no package index.

The dependencies are downloaded once on the host (`pip download`, binary wheels for the
host's Python, which is the VM's 3.11) into the cache dir, keyed by what is asked for;
fedstack's own wheel is built fresh from the working tree each run (`pip wheel --no-deps .`).
The folder carries a PEP 503 index (`simple/<project>/index.html`), so the VM's pip takes it as
PIP_INDEX_URL (`file://...`, the stack's `pipIndexUrl`) or as `--find-links` with `--no-index`.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from tests.infra.debroot import CACHE
from tests.infra.harness import ROOT

#: where the wheelhouse lands in the VM
VM_WHEELS = "/var/tmp/fedstack-wheels"
PIP_TIMEOUT = 900.0


def requirements(fc_version: str) -> list[str]:
    """The FeatureCloud CLI at the pinned version and fedstack's base + emulator dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        f"featurecloud=={fc_version}",
        *project["dependencies"],
        *project["optional-dependencies"]["emulator"],
    ]


def wheelhouse(fc_version: str, work: Path) -> Path:
    """A folder with every wheel and its index: the cached dependencies plus fedstack's wheel."""
    deps = _cached_dependencies(requirements(fc_version))
    folder = work / "wheels"
    shutil.copytree(deps, folder / "wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
         str(folder / "wheels"), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=PIP_TIMEOUT,
    )  # fmt: skip
    _write_index(folder)
    return folder


def _cached_dependencies(wanted: list[str]) -> Path:
    key = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:16]
    folder = CACHE / f"vm-wheels-{key}"
    if folder.is_dir():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix="vm-wheels-partial-", dir=CACHE))
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
             "--python-version", "3.11", "-d", str(partial), *wanted],
            check=True,
            capture_output=True,
            timeout=PIP_TIMEOUT,
        )  # fmt: skip
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _project(wheel: str) -> str:
    """A wheel's project name, normalised as PEP 503 wants it."""
    return re.sub(r"[-_.]+", "-", wheel.split("-", 1)[0]).lower()


def _write_index(folder: Path) -> None:
    """`simple/index.html` and one page per project, linking to the wheels."""
    by_project: dict[str, list[str]] = {}
    for wheel in sorted(p.name for p in (folder / "wheels").glob("*.whl")):
        by_project.setdefault(_project(wheel), []).append(wheel)
    simple = folder / "simple"
    for project, wheels in by_project.items():
        (simple / project).mkdir(parents=True)
        links = "".join(f'<a href="../../wheels/{w}">{w}</a><br>\n' for w in wheels)
        (simple / project / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")
    links = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in by_project)
    (simple / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")
