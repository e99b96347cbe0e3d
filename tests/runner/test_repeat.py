"""`--repeat N`: one project, N run folders, and a repetition that makes no token.

Each test runs the embedded demo (the emulated website, local sites with a controller process
each) through `runner.demo.run_demo`, the path `python -m runner --demo --repeat N` takes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from fcapi.emulator.serve import running_site
from runner import cli
from runner.demo import run_demo
from runner.engine.repeat import execute_series
from runner.errors import EXIT_PROJECT_FAILED, BadInput
from runner.outputs.metrics import METRICS_FILE
from tests.runner.federation import build

SERIES_DEADLINE = 300.0
TOKEN_ENDPOINTS = ("POST /api/project-tokens/{id}/", "POST /api/project-tokens/")


def _metrics(run_dir: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((run_dir / METRICS_FILE).read_text())
    return found


async def test_repetitions_share_one_project_and_make_no_token(tmp_path: Path) -> None:
    outcome, means = await run_demo(3, tmp_path, json_output=True, repeat=3)
    assert outcome.code == 0
    summary = outcome.summary
    reps = cast(list[dict[str, Any]], summary["repetitions"])
    assert [r["repetition"] for r in reps] == [1, 2, 3]
    assert all(r["status"] == "completed" for r in reps)
    assert summary["stopped"] is None
    # each repetition its own folder and run id, one project for all
    run_dirs = [Path(r["run_dir"]) for r in reps]
    assert len({d.name for d in run_dirs}) == 3 and all(d.is_dir() for d in run_dirs)
    assert {r["project_id"] for r in reps} == {reps[0]["project_id"]}
    first, *later = [_metrics(d)["requests"]["by_endpoint"] for d in run_dirs]
    assert first.get("POST /api/project-tokens/{id}/") == 2  # the first run made the tokens
    for by_endpoint in later:
        # members asked as themselves; no token, no join, no site fetched again
        assert not any(by_endpoint.get(e) for e in TOKEN_ENDPOINTS), by_endpoint
        assert "POST /api/projects/" not in by_endpoint
        assert "GET /api/site/" not in by_endpoint
    # a repetition's folder holds its own run's results only, not the project's earlier runs
    for number, run_dir in enumerate(run_dirs, start=1):
        runs = sorted(p.name for p in (run_dir / "sites" / "site2").iterdir())
        assert runs == [f"run{number}"]
    # the participants' joins of a repetition are skipped: they are members already
    for run_dir in run_dirs[1:]:
        sites = _metrics(run_dir)["sites"]
        joins = [p for s in sites if s["role"] == "participant" for p in s["phases"]]
        assert {p["state"] for p in joins if p["name"] == "join"} == {"skipped"}
    assert set(means.values()) == {"54.20000000000001"}


def test_resume_with_repeat_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory.json"
    inventory.write_text("{}")
    code = cli.main(
        ["--inventory", str(inventory), "--resume", "20261123-114501-ab12", "--repeat", "2"]
    )
    err = capsys.readouterr().err
    assert code == BadInput.exit_code
    assert err.strip().splitlines() == [
        "runner: --resume continues one run: give it without --repeat"
    ]


@pytest.mark.parametrize("demo", [True, False])
def test_a_repeat_below_one_is_refused_in_one_line(
    demo: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--demo"] if demo else ["--inventory", str(tmp_path / "none.json")]
    code = cli.main([*argv, "--repeat", "0", "--outdir", str(tmp_path)])
    assert code == BadInput.exit_code
    assert capsys.readouterr().err.strip().splitlines() == [
        "runner: --repeat must be at least 1, got 0"
    ]
    assert list(tmp_path.iterdir()) == []


async def test_a_failed_repetition_ends_the_series_and_stops_the_controllers(
    tmp_path: Path,
) -> None:
    async with running_site() as website:
        fed = await build(tmp_path, website.url, local_sites=3)
        async with httpx.AsyncClient() as client:
            faults = await client.put(f"{website.url}/_emulator/faults", json={"app_fail": "site2"})
            faults.raise_for_status()
        outcome = await asyncio.wait_for(
            execute_series(
                3, fed.inventory, fed.workflow(), fed.passwords, website_url=website.url
            ),
            SERIES_DEADLINE,
        )
    assert outcome.code == EXIT_PROJECT_FAILED
    summary = outcome.summary
    assert summary["status"] == "failed"
    assert summary["stopped"] == "repetition 1 of 3 failed: the series stopped, 2 not run"
    assert summary["run_ids"] == [outcome.run_dir.name]
    # the controllers kept up for a next run that will not come are stopped
    for site in fed.inventory.sites:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{site.controller.port}/ping/", timeout=5)
