"""The committed example workflow, end to end: `python -m runner --demo --workflow FILE`.

Two engine apps in one project (apps/standardize, then apps/linear_regression), each a process
per site, over real HTTP: the emulated website and controllers as processes, the runner as the
user starts it. The federated coefficients must equal the centralized fit on the pooled data
standardised with the pooled mean and (population) standard deviation.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from runner.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "standardize-regression"
#: an engine run costs ~15-30 s per step on a busy machine; two steps, three sites
DEADLINE = 300


def centralized_standardised_fit() -> list[float]:
    tables = [
        np.genfromtxt(EXAMPLE / "data" / f"site{i}.csv", delimiter=",", names=True)
        for i in (1, 2, 3)
    ]
    pooled = np.concatenate(tables)
    x = np.column_stack([pooled[c] for c in ("a", "b", "c")])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    design = np.column_stack([np.ones(len(x)), x])
    coef, *_ = np.linalg.lstsq(design, pooled["y"], rcond=None)
    return [float(v) for v in coef]


async def test_the_example_workflow_runs_both_engine_apps_to_the_centralized_fit(
    tmp_path: Path, engine_venv: Path
) -> None:
    argv = [sys.executable, "-m", "runner", "--demo", "--workflow", str(EXAMPLE / "workflow.toml")]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        "--outdir",
        str(tmp_path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120"},
    )
    async with asyncio.timeout(DEADLINE):
        out, err = await proc.communicate()
    assert proc.returncode == 0, out.decode() + err.decode()[-2000:]  # failures are on stdout
    assert out.decode().splitlines()[-1] == (
        "every one of the 3 sites has the workflow's last result: "
        "step 2: coefficients.csv, model.json"
    )
    [run_dir] = [p for p in tmp_path.iterdir() if (p / "state.json").is_file()]
    want = centralized_standardised_fit()
    for site in ("site1", "site2", "site3"):
        step1 = run_dir / "sites" / site / "run1" / "step1"
        standardised = np.genfromtxt(step1 / "data.csv", delimiter=",", names=True)
        assert standardised.dtype.names == ("a", "b", "c", "y")
        model = json.loads((run_dir / "sites" / site / "run1" / "step2" / "model.json").read_text())
        assert model["names"] == ["intercept", "a", "b", "c"]
        np.testing.assert_allclose(model["coefficients"], want, rtol=0, atol=1e-9)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [(s["step"], s["app"], s["app_id"], s["status"]) for s in metrics["steps"]] == [
        (1, "standardize", 902, "ok"),
        (2, "linear-regression", 901, "ok"),
    ]
    logs = (run_dir / "sites" / "site2" / "run1" / "log_step1.txt").read_text()
    assert "app folder" in logs  # an app process, not the in-process twin


def test_a_workflow_naming_an_app_the_demo_does_not_ship_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (EXAMPLE / "workflow.toml").read_text().replace('"standardize"', '"random-forest"')
    workflow = tmp_path / "workflow.toml"
    workflow.write_text(text.replace('path = "data/', f'path = "{EXAMPLE}/data/'))
    (tmp_path / "config.yml").write_text("{}\n")
    assert main(["--demo", "--workflow", str(workflow), "--outdir", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"runner: {workflow}: field apps[0]: the demo has no app folder for 'random-forest' "
        "(it runs mean-app, linear-regression, standardize)"
    ]
    assert not (tmp_path / "o").exists()
