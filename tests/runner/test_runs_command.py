"""`python -m runner runs` and `show`: an output folder's runs, read back from what they left."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from runner import cli
from runner.errors import BadInput
from runner.outputs import metrics as mt
from tests.runner.inventories import make_inventory
from tests.runner.runs import T0, finished_state, sample_stats

RUN_ID = "20261123-114501-ab12"


def make_run(outdir: Path, values: dict[str, str], fail: str | None = None) -> Path:
    """A run folder as a run leaves it: metrics.json and each site's output.csv."""
    run_dir = outdir / RUN_ID
    state = finished_state(fail)
    metrics = mt.build_metrics(
        state,
        make_inventory(),
        workflow_path=Path("/w/workflow.toml"),
        stats=sample_stats(),
        finished_at=T0 + timedelta(seconds=8),
    )
    mt.write_metrics(run_dir, metrics)
    for site, value in values.items():
        out = run_dir / "sites" / site / "run1" / "step1"
        out.mkdir(parents=True)
        (out / "output.csv").write_text(f"{value}\n")
        (out / "config.yml").write_text("fc_mean: {}\n")
    return run_dir


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_runs_lists_each_run_with_its_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(tmp_path, {"alpha": "5.5", "beta": "5.5", "gamma": "5.5"})
    (tmp_path / "20261124-090000-cd34").mkdir()  # a run under way: no metrics yet
    (tmp_path / "mlruns").mkdir()  # the tracking store is no run
    code, out, _ = _run(["runs", "--outdir", str(tmp_path), "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [r["run_id"] for r in rows] == [RUN_ID, "20261124-090000-cd34"]
    first = rows[0]
    assert first["status"] == "completed"
    assert first["app"] == "mean-app"
    assert first["sites"] == 3
    assert first["result"] == "5.5 (3 sites agree)"
    assert first["sites_agree"] is True
    assert rows[1]["status"].startswith("under way or stopped")
    code, out, _ = _run(["runs", "--outdir", str(tmp_path)], capsys)
    assert code == 0
    assert RUN_ID in out and "5.5 (3 sites agree)" in out


def test_show_prints_one_run_and_says_when_sites_disagree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(tmp_path, {"alpha": "5.5", "beta": "5.5", "gamma": "6.5"})
    code, out, _ = _run(["show", RUN_ID, "--outdir", str(tmp_path)], capsys)
    assert code == 0
    assert f"run {RUN_ID}: completed" in out
    assert "result: 5.5 (sites DISAGREE)" in out
    assert "gamma: ok; output.csv=6.5" in out
    code, out, _ = _run(["show", RUN_ID, "--outdir", str(tmp_path), "--json"], capsys)
    detail = json.loads(out)
    assert detail["per_site"]["gamma"]["values"] == {"output.csv": "6.5"}
    assert detail["sites_agree"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["runs", "--outdir", "{tmp}/nowhere"], "runner: --outdir {tmp}/nowhere: no such folder"),
        (
            ["show", "20261123-000000-ffff", "--outdir", "{tmp}"],
            "runner: no run '20261123-000000-ffff' in {tmp} (python -m runner runs lists them)",
        ),
        (["show", "--outdir", "{tmp}"], "runner: the following arguments are required: RUN_ID"),
        (["runs", "--outdir", "{tmp}"], "runner: {tmp}/" + RUN_ID + "/metrics.json: damaged"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(tmp_path, {})
    if "damaged" in message:
        (tmp_path / RUN_ID / "metrics.json").write_text('{"status": "completed", ')
    code, out, err = _run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == BadInput.exit_code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and out == ""
    assert lines[0].startswith(message.format(tmp=tmp_path))
