"""`execute()`: run (or resume) a workflow and write its outputs; what every caller uses.

The CLI, the demo, the tests and, later, sweeps call this with inputs already checked
(runner.plan), and read the outcome: an exit code that says how the run went, the run's folder
and the summary the outputs wrote. Nothing here reads argv or prints; failures the user can
act on are `runner.errors.RunnerError`s.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr

from fcapi.files import write_atomic
from fcapi.website import WebsitePool
from fedinfra.inventory import Inventory
from runner.engine.carry import Carried
from runner.engine.checkpoint import (
    RunState,
    inventory_digest,
    load_state,
    new_run_id,
    new_state,
    resume_state,
)
from runner.engine.orchestrate import Orchestrator, RunOptions, RunResult, finished_result
from runner.errors import (
    EXIT_DEADLINE,
    EXIT_OK,
    EXIT_PROJECT_FAILED,
    EXIT_SITES_FAILED,
    RunInterrupted,
)
from runner.outputs.events import EventStream
from runner.outputs.progress import make_progress
from runner.outputs.writers import WRITERS, write_outputs
from runner.outputs.writers.mlflow_tracking import Tracking, track
from runner.plan.preflight import preflight
from runner.plan.workflow import Workflow
from runner.provenance.record import record_provenance


@dataclass
class Outcome:
    """How a run went: the exit code, where its folder is, and its summary (as `--json` prints)."""

    code: int
    run_dir: Path
    summary: dict[str, object]


async def execute(
    inventory: Inventory,
    workflow: Workflow,
    passwords: dict[str, SecretStr],
    *,
    website_url: str,
    resume: str | None = None,
    keep_controllers: bool = False,
    keep_project_running: bool = False,
    json_output: bool = False,
    rate: float = 3.0,
    tracking: Tracking | None = None,
    carried: Carried | None = None,
    events: TextIO | None = None,
) -> Outcome:
    """Run (or resume) the workflow and write every output; the exit code says how it went.

    `tracking`: record the run with MLflow there too (runner.outputs.writers.mlflow_tracking);
    `carried`: what earlier runs of a series on the same project learnt (runner.engine.repeat);
    `events`: a stream that gets every phase change, failure and the result as JSON lines.
    Ctrl-C (a cancelled task) raises `RunInterrupted` once the state is saved.
    """
    options = RunOptions(
        website_url=website_url,
        keep_controllers=keep_controllers,
        keep_project_running=keep_project_running,
        rate=rate,
        carried=carried,
    )
    pool = options.website_pool(passwords)
    try:
        outcome = await _execute(inventory, workflow, pool, options, resume, json_output, events)
        if tracking is not None:
            state = load_state(workflow.outdir, str(outcome.summary["run_id"]))
            outcome.summary["tracking"] = await asyncio.to_thread(
                track, tracking, outcome.run_dir, state
            )
        return outcome
    finally:
        await pool.aclose()


async def _execute(
    inventory: Inventory,
    workflow: Workflow,
    pool: WebsitePool,
    options: RunOptions,
    resume: str | None,
    json_output: bool,
    events: TextIO | None = None,
) -> Outcome:
    readiness = None
    if resume is None:  # a resumed run passed it when it started; its project may exist now
        readiness = await preflight(inventory, workflow, pool)
    state = start_state(inventory, workflow, resume)
    run_dir = workflow.outdir / state.run_id
    if state.phase == "done":
        # killed after its last checkpoint, before its outputs: they are all it lacks
        result = finished_result(state)
        summary = await asyncio.to_thread(write_outputs, result, inventory, workflow, run_dir)
        code = exit_code(result, workflow.deadline_seconds)
        return Outcome(code=code, run_dir=run_dir, summary=summary)
    await asyncio.to_thread(keep_inputs, run_dir, inventory, workflow)
    if readiness is not None:  # a resume keeps the provenance its first attempt recorded
        await record_provenance(run_dir, inventory, workflow, readiness, pool)
    listeners = [EventStream(events)] if events is not None else []
    progress = make_progress(sys.stderr, json_mode=json_output, listeners=listeners)
    progress.start(state.run_id, [s.name for s in inventory.sites], run_dir)
    orchestrator = Orchestrator(inventory, workflow, pool, state, options, progress)
    try:
        result = await orchestrator.run()
    except asyncio.CancelledError:
        raise RunInterrupted(state.run_id, run_dir) from None
    finally:
        progress.close()
    summary = await asyncio.to_thread(write_outputs, result, inventory, workflow, run_dir)
    code = exit_code(result, workflow.deadline_seconds)
    progress.finish({**summary, "exit_code": code})
    return Outcome(code=code, run_dir=run_dir, summary=summary)


def start_state(inventory: Inventory, workflow: Workflow, resume: str | None) -> RunState:
    """A new run's state, or the state of the run `resume` names (refused if its inputs changed)."""
    inv_digest = inventory_digest(inventory)
    if resume is not None:
        return resume_state(
            workflow.outdir,
            resume,
            workflow_digest=workflow.digest,
            inventory_digest=inv_digest,
            outputs=[w.file for w in WRITERS],
            apps=workflow.apps,
        )
    state = new_state(
        new_run_id(),
        workflow_digest=workflow.digest,
        inventory_digest=inv_digest,
        sites=[s.name for s in inventory.sites],
        apps=workflow.apps,
        project_id=workflow.project_id if workflow.project_id else None,
    )
    if workflow.project_id is not None:
        state.project_id = None  # a reused project is (re)checked by the run itself
    return state


def exit_code(result: RunResult, deadline_seconds: float | None = None) -> int:
    """0 when it finished everywhere, 10 when the project failed, 7 when the deadline passed
    first (`deadline_seconds`, the attempt's own), 11 when sites failed (runner.errors)."""
    if result.project is not None and result.project.status in ("error", "failed"):
        return EXIT_PROJECT_FAILED
    if result.ok:
        return EXIT_OK
    if deadline_seconds is not None and result.wall_seconds >= deadline_seconds:
        return EXIT_DEADLINE
    return EXIT_SITES_FAILED


def keep_inputs(run_dir: Path, inventory: Inventory, workflow: Workflow) -> None:
    """The workflow file and the inventory (secrets masked) the run used, beside its results.

    A result is only as trustworthy as the record of what produced it; the workflow file may
    change or vanish after the run.
    """
    inputs = run_dir / "inputs"
    write_atomic(inputs / "workflow.toml", workflow.source.read_bytes())
    inventory_text = json.dumps(inventory.to_json_dict(reveal_secrets=False), indent=2)
    write_atomic(inputs / "inventory.json", inventory_text + "\n")
