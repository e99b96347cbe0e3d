"""Where a controller keeps things in its data dir (reference §2 layout), as pure paths.

`workflows/Project_{pid}/Run_{n}/results_pr{pid}_run{n}_step{s}.zip` is the platform's
layout, which clients rely on; `uploads/` and the per-run `input_step*`/`output_step*`
directories are the emulator's own.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fcapi.files import atomic_target

SITE_INFO = "site_info.json"


@dataclass(frozen=True)
class RunLayout:
    data_dir: Path
    pid: int
    run: int

    @property
    def dir(self) -> Path:
        return project_dir(self.data_dir, self.pid) / f"Run_{self.run}"

    def result_zip(self, step: int) -> Path:
        return self.dir / f"results_pr{self.pid}_run{self.run}_step{step}.zip"

    def log(self, step: int) -> Path:
        return self.dir / f"log_pr{self.pid}_run{self.run}_step{step}.txt"

    def input(self, step: int) -> Path:
        return self.dir / f"input_step{step}"

    def output(self, step: int) -> Path:
        return self.dir / f"output_step{step}"

    @property
    def meta(self) -> Path:
        return self.dir / "run.json"


def project_dir(data_dir: Path, pid: int) -> Path:
    return data_dir / "workflows" / f"Project_{pid}"


def uploads_dir(data_dir: Path, pid: int) -> Path:
    return data_dir / "uploads" / f"Project_{pid}"


def list_runs(data_dir: Path, pid: int) -> list[dict[str, Any]]:
    """The body of `GET /project-runs/`: newest first, steps that have a log or a result."""
    runs = []
    base = project_dir(data_dir, pid)
    for meta in base.glob("Run_*/run.json") if base.exists() else []:
        info = json.loads(meta.read_text())
        layout = RunLayout(data_dir, pid, int(info["runNr"]))
        steps = range(1, int(info.get("steps", 1)) + 1)
        runs.append(
            {
                "runNr": layout.run,
                "startedOn": info.get("startedOn"),
                "logSteps": [s for s in steps if layout.log(s).exists()],
                "resultSteps": [s for s in steps if layout.result_zip(s).exists()],
            }
        )
    return sorted(runs, key=lambda r: int(r["runNr"]), reverse=True)


def zip_output(output_dir: Path, dest: Path) -> None:
    """The app's output files at the zip's top level; `dest` appears only once complete."""
    with atomic_target(dest) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(output_dir.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(output_dir).as_posix())
