"""One cell: its inputs, its run through `runner.api.execute` (new, resumed or adopted), its record.

A cell never makes a second project for one run: a run its record does not know as finished
is resumed from its checkpoint (or adopted, when it finished before the record was written);
only a failed cell gets a new run.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from runner.api import Outcome, execute
from runner.engine.checkpoint import list_runs, load_state
from runner.errors import EXIT_SITES_FAILED, RunInterrupted, RunnerError
from runner.outputs.manifest import MANIFEST_FILE
from runner.outputs.metrics import METRICS_FILE, load_metrics
from runner.outputs.writers.mlflow_tracking import Tracking
from runner.plan.workflow import load_workflow
from runner.sweep.cells import Cell, Rows
from runner.sweep.data import CONFIG_NAME, DATA_NAME, write_cell_inputs
from runner.sweep.locks import SitePool
from runner.sweep.results import phase_seconds, run_results
from runner.sweep.state import CellAttempt, CellState, load_cell, now, save_cell
from runner.sweep.study import Study
from runner.sweep.targets import Target

RUNS = "runs"
WORKFLOW_FILE = "workflow.toml"


@dataclass
class CellContext:
    """What every cell of one invocation shares."""

    study: Study
    table: tuple[list[str] | None, Rows]
    target: Target
    pool: SitePool
    #: where MLflow records each cell's run (None: not tracked)
    tracking: Tracking | None = None


def cell_folder(study: Study, cell: Cell) -> Path:
    return study.folder / "cells" / cell.id


def unfinished_run(runs: Path, state: CellState) -> tuple[str | None, list[str]]:
    """A run of this cell the record does not know as ended, and its sites in order."""
    found = [r for r in list_runs(runs) if r not in state.ended_runs()]
    if not found:
        return None, []
    run = load_state(runs, found[-1])
    return run.run_id, list(run.sites)


def workflow_text(
    study: Study, cell: Cell, sites: list[str], shares: list[Path], project_id: int | None = None
) -> str:
    """The cell's workflow file; `project_id`: the cell's project from a failed attempt."""
    make = f"app = {json.dumps(cell.app)}" if project_id is None else f"project_id = {project_id}"
    lines = [
        make,
        f"deadline = {study.spec.deadline}",
        'outdir = "runs"',
    ]
    if shares and (shares[0].parent.parent / CONFIG_NAME).is_file():
        lines.append(f'config = "{CONFIG_NAME}"')
    for site, share in zip(sites, shares, strict=True):
        ref = json.dumps(f"data/{share.name}")
        lines += [
            "",
            f"[sites.{json.dumps(site)}]",
            f'files = [{{ path = {ref}, as = "{DATA_NAME}" }}]',
        ]
    return "\n".join(lines) + "\n"


async def run_cell(ctx: CellContext, cell: Cell) -> CellState:
    """Run the cell unless it is finished; its record, saved."""
    folder = cell_folder(ctx.study, cell)
    state = await asyncio.to_thread(load_cell, folder, cell)
    if state.status == "completed":
        return state
    resume, sites = await asyncio.to_thread(unfinished_run, folder / RUNS, state)
    # a failed attempt's project is the cell's project: retried on it, with the sites that
    # joined it, so a cell never has a second project (nor strangers in its first)
    again = state.project_id if resume is None and state.status == "failed" else None
    if again is not None:
        sites = state.sites
    names = await ctx.pool.take(cell.run_sites, sites if resume or again else None)
    started = now()
    try:
        state = state.model_copy(update={"status": "running", "sites": names, "run_id": resume})
        await asyncio.to_thread(save_cell, folder, state)
        if resume is not None and adoptable(folder / RUNS / resume):
            outcome = adopted(folder / RUNS / resume)
        else:
            outcome = await start_run(ctx, cell, folder, names, resume, again)
    except RunInterrupted as stop:
        state = ended(state, started, stop.run_id, "interrupted", stop.exit_code, str(stop))
        await asyncio.to_thread(save_cell, folder, state)
        raise
    except RunnerError as exc:
        state = ended(state, started, resume, "failed", exc.exit_code, str(exc))
        await asyncio.to_thread(save_cell, folder, state)
        return state
    finally:
        await ctx.pool.give_back(names)
    state = await asyncio.to_thread(finished, state, started, outcome, names)
    await asyncio.to_thread(save_cell, folder, state)
    return state


async def start_run(
    ctx: CellContext,
    cell: Cell,
    folder: Path,
    names: list[str],
    resume: str | None,
    project_id: int | None = None,
) -> Outcome:
    shares = await asyncio.to_thread(
        write_cell_inputs, ctx.study, cell, ctx.table, folder, keep=resume is not None
    )
    text = workflow_text(ctx.study, cell, names, shares, project_id)
    inventory = ctx.target.cell_inventory(names)
    workflow_file = folder / WORKFLOW_FILE
    if not workflow_file.is_file() or workflow_file.read_text(encoding="utf-8") != text:
        await asyncio.to_thread(workflow_file.write_text, text, encoding="utf-8")
    workflow = load_workflow(workflow_file, inventory)
    return await execute(
        inventory,
        workflow,
        ctx.target.cell_passwords(names),
        website_url=ctx.target.website_url,
        resume=resume,
        json_output=True,
        tracking=ctx.tracking,
    )


def adoptable(run_dir: Path) -> bool:
    """A run that finished, outputs and all, before the cell's record said so."""
    return (run_dir / MANIFEST_FILE).is_file() and (run_dir / METRICS_FILE).is_file()


def adopted(run_dir: Path) -> Outcome:
    metrics = load_metrics(run_dir / METRICS_FILE)
    code = 0 if metrics.status == "completed" else EXIT_SITES_FAILED
    summary: dict[str, object] = {
        "run_id": metrics.run_id,
        "status": metrics.status,
        "project_id": metrics.project_id,
        "wall_seconds": metrics.wall_clock_seconds,
    }
    return Outcome(code=code, run_dir=run_dir, summary=summary)


def ended(
    state: CellState,
    started: datetime,
    run_id: str | None,
    outcome: Literal["completed", "failed", "interrupted"],
    code: int,
    error: str | None,
) -> CellState:
    """The record with one more attempt, and the cell standing as that attempt ended."""
    attempt = CellAttempt(
        run_id=run_id,
        outcome=outcome,
        code=code,
        started_at=started,
        finished_at=now(),
        error=error,
    )
    update = {"status": outcome, "run_id": run_id, "error": error}
    return state.model_copy(update={**update, "attempts": [*state.attempts, attempt]})


def finished(state: CellState, started: datetime, outcome: Outcome, names: list[str]) -> CellState:
    """The record after a run ended: its outcome, results, phase timings."""
    s = outcome.summary
    ok = outcome.code == 0 and s.get("status") == "completed"
    run_id = str(s.get("run_id"))
    error = None if ok else f"run {run_id} ended {s.get('status')}: {s.get('failures') or ''}"
    results, agree = run_results(outcome.run_dir, names)
    state = ended(state, started, run_id, "completed" if ok else "failed", outcome.code, error)
    project = s.get("project_id")
    return state.model_copy(
        update={
            "project_id": project if isinstance(project, int) else None,
            "seconds": _seconds(s.get("wall_seconds")),
            "results": results,
            "sites_agree": agree,
            "phases": phase_seconds(outcome.run_dir),
        }
    )


def _seconds(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
