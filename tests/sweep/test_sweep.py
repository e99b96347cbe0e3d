"""A sweep on the demo federation, end to end: it completes, a second invocation runs nothing,
a failed cell is retried, an interrupted one resumes its run without a second project.

Every cell is a real run (emulated website and controllers, the runner's whole code path), so
the cells are few: a 2-site mean cell and its centralized twin, and single cells elsewhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from runner.commands.sweep import main

MEAN_STUDY = (
    'name = "t"\napps = ["mean-app"]\nsites = [2]\ncentralized = true\ndeadline = "3m"\n'
    "parallel = 2\n"
)
REGRESSION = 'name = "r"\napps = ["linear-regression"]\nsites = [2]\ndeadline = "3m"\n'
TABLE = "[data]\ntable = 'table.csv'\nheader = true\n"


def projects(study_dir: Path) -> dict[int, str]:
    """The demo website's projects (id -> name), from its state file."""
    state = json.loads((study_dir / "federation" / "site-state.json").read_text())
    return {int(i): p["name"] for i, p in state["projects"].items()}


def cell(study_dir: Path, cell_id: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((study_dir / "cells" / cell_id / "cell.json").read_text())
    return record


def sweep(tmp_path: Path, study: Path, *extra: str) -> int:
    return main([str(study), "--outdir", str(tmp_path / "out"), *extra])


def table(rows: int, target: str = "y") -> str:
    lines = [f"a,b,{target}"]
    lines += [f"{i},{(i * 7) % 5},{2.0 + 3.0 * i - 0.5 * ((i * 7) % 5)}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def test_a_sweep_completes_and_a_second_one_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "t.toml"
    study.write_text(MEAN_STUDY)
    assert sweep(tmp_path, study) == 0, capsys.readouterr()
    out = tmp_path / "out" / "t"
    fed, twin = cell(out, "mean-app-n2-balanced-r1"), cell(out, "mean-app-n2-balanced-r1-central")
    assert fed["status"] == twin["status"] == "completed"
    assert fed["results"] == {"output": 53.2} and fed["sites_agree"] is True
    assert twin["results"] == {"output": 53.2} and len(twin["sites"]) == 1
    (a,), (b,) = fed["attempts"], twin["attempts"]
    assert a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]  # at once
    assert not set(fed["sites"]) & set(twin["sites"])  # and each on its own sites
    made = projects(out)
    assert sorted(made) == sorted([fed["project_id"], twin["project_id"]])
    summary = json.loads((out / "summary.json").read_text())
    assert [c["status"] for c in summary["cells"]] == ["completed", "completed"]
    assert summary["comparisons"] == [
        {
            "cell": "mean-app-n2-balanced-r1",
            "name": "output",
            "federated": 53.2,
            "centralized": 53.2,
            "abs_difference": 0.0,
        }
    ]
    assert "mean-app-n2-balanced-r1" in (out / "summary.csv").read_text()
    assert "completed" in (out / "sweep.html").read_text()
    tracked = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns' / 'mlflow.db'}")
    experiment = tracked.get_experiment_by_name("fedstack")
    assert experiment is not None, "the cells were not tracked"
    runs = tracked.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted([fed["run_id"], twin["run_id"]])
    capsys.readouterr()
    state_before = (out / "federation" / "site-state.json").stat().st_mtime_ns

    assert sweep(tmp_path, study, "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert [c["run_id"] for c in again["cells"]] == [fed["run_id"], twin["run_id"]]
    assert projects(out) == made  # no project, and not even the website was started
    assert (out / "federation" / "site-state.json").stat().st_mtime_ns == state_before
    assert len(cell(out, "mean-app-n2-balanced-r1")["attempts"]) == 1


def test_a_failed_cell_is_retried_with_the_data_as_it_is_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "r.toml"
    study.write_text(REGRESSION + TABLE)
    (tmp_path / "table.csv").write_text(table(12, target="z"))  # no column y: the app fails
    assert sweep(tmp_path, study) != 0
    out = tmp_path / "out" / "r"
    failed = cell(out, "linear-regression-n2-balanced-r1")
    assert failed["status"] == "failed" and failed["error"]
    assert "failed" in (out / "sweep.html").read_text()
    (tmp_path / "table.csv").write_text(table(12))
    capsys.readouterr()
    assert sweep(tmp_path, study) == 0, capsys.readouterr()
    retried = cell(out, "linear-regression-n2-balanced-r1")
    assert [a["outcome"] for a in retried["attempts"]] == ["failed", "completed"]
    assert retried["run_id"] != failed["run_id"]
    # retried on its own project, with the same sites: never a second project for a cell
    assert retried["project_id"] == failed["project_id"] and retried["sites"] == failed["sites"]
    assert len(projects(out)) == 1
    coef = {k: v for k, v in retried["results"].items() if k.startswith("coefficients.")}
    assert coef["coefficients.intercept"] == pytest.approx(2.0, abs=1e-9)
    assert coef["coefficients.a"] == pytest.approx(3.0, abs=1e-9)
    assert coef["coefficients.b"] == pytest.approx(-0.5, abs=1e-9)


def running_project(out: Path, deadline: float) -> Path:
    """The run folder of a cell whose project exists (its checkpoint says so)."""
    while time.monotonic() < deadline:
        for state in out.glob("cells/*/runs/*/state.json"):
            try:
                if json.loads(state.read_text()).get("project_id") is not None:
                    return state.parent
            except (json.JSONDecodeError, OSError):
                pass  # being replaced right now
        time.sleep(0.05)
    raise AssertionError("no cell made its project in time")


def test_an_interrupted_sweep_resumes_its_run_without_a_second_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "i.toml"
    study.write_text('name = "i"\napps = ["mean-app"]\nsites = [3]\ndeadline = "3m"\n')
    out = tmp_path / "out" / "i"
    argv = [sys.executable, "-m", "runner", "sweep", str(study), "--outdir", str(tmp_path / "out")]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        run_dir = running_project(out, time.monotonic() + 120)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "the same command resumes them" in err
    stopped = cell(out, "mean-app-n3-balanced-r1")
    assert stopped["status"] == "interrupted" and stopped["run_id"] == run_dir.name
    assert len(projects(out)) == 1

    assert sweep(tmp_path, study) == 0, capsys.readouterr()
    done = cell(out, "mean-app-n3-balanced-r1")
    assert done["status"] == "completed" and done["run_id"] == run_dir.name
    assert [a["outcome"] for a in done["attempts"]] == ["interrupted", "completed"]
    assert done["results"] == {"output": 54.20000000000001}
    assert list(projects(out)) == [done["project_id"]]  # the same one project
