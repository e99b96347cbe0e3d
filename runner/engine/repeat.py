"""`--repeat N`: the same workflow N times on one project, each run its own folder and id.

The first run makes the project (or takes the workflow's `project_id`); every later one
reuses it, so each participant only confirms, as itself, that it is a member, and no token is
made. The controllers stay up between runs and what the website said of each site is carried
over (runner.engine.carry), so a repetition costs the platform's own steps (reset, prepare,
upload, run, collect) and a handful of coordinator requests. A failed run ends the series:
its project was stopped and its cause (a site down, a wrong input) usually holds for the next
run too; the runs not made are said so, and the series' exit code is the failed run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from pydantic import SecretStr

from fedinfra.inventory import Inventory
from runner.api import Outcome, execute
from runner.engine.carry import Carried
from runner.errors import EXIT_OK, BadInput, RunInterrupted, RunnerError
from runner.plan.workflow import Workflow
from runner.sites.registry import open_site

#: how long stopping every controller after a failed repetition may take
STOP_DEADLINE = 120.0


async def execute_series(
    repeat: int,
    inventory: Inventory,
    workflow: Workflow,
    passwords: dict[str, SecretStr],
    *,
    website_url: str,
    keep_controllers: bool = False,
    **options: Any,
) -> Outcome:
    """Run the workflow `repeat` times on one project; one run is `execute` itself.

    The outcome's summary lists each run's summary under `repetitions`; its run folder and
    code are the last run's (the code: the first failure's, since that ends the series).
    `options` are `execute`'s.
    """
    if repeat < 1:
        raise BadInput(f"--repeat must be at least 1, got {repeat}")
    if repeat == 1:
        return await execute(
            inventory,
            workflow,
            passwords,
            website_url=website_url,
            keep_controllers=keep_controllers,
            **options,
        )
    carried = Carried()
    summaries: list[dict[str, object]] = []
    outcome: Outcome | None = None
    for number in range(1, repeat + 1):
        last = number == repeat
        started = time.monotonic()
        try:
            outcome = await execute(
                inventory,
                workflow,
                passwords,
                website_url=website_url,
                keep_controllers=keep_controllers or not last,  # up for the next run
                carried=carried,
                **options,
            )
        except RunInterrupted:
            raise  # its run is saved and resumable; the series ends here
        except RunnerError as exc:
            if number == 1:
                raise  # nothing was touched: the same one line as a single run
            await stop_controllers(inventory)
            return _failed(outcome, summaries, number, repeat, exc)
        summaries.append(_repetition(outcome, number, time.monotonic() - started))
        if number == 1 and workflow.project_id is None:
            pid = outcome.summary.get("project_id")
            if isinstance(pid, int):
                workflow = workflow.model_copy(update={"project_id": pid})
        if outcome.code != EXIT_OK:
            if not (last or keep_controllers):
                await stop_controllers(inventory)
            break
    assert outcome is not None
    return _series(outcome, summaries, repeat)


def _repetition(outcome: Outcome, number: int, seconds: float) -> dict[str, object]:
    """One run's summary, numbered, with the time it took from start to written outputs."""
    return {**outcome.summary, "repetition": number, "elapsed_seconds": round(seconds, 3)}


def _series(outcome: Outcome, summaries: list[dict[str, object]], repeat: int) -> Outcome:
    done = len(summaries)
    failed = next((s for s in summaries if s.get("status") != "completed"), None)
    summary: dict[str, object] = {
        "repeat": repeat,
        "repetitions": summaries,
        "run_ids": [s.get("run_id") for s in summaries],
        "status": "completed" if failed is None else "failed",
        "stopped": None
        if failed is None or done == repeat
        else f"repetition {done} of {repeat} failed: the series stopped, {repeat - done} not run",
    }
    return Outcome(code=outcome.code, run_dir=outcome.run_dir, summary=summary)


def _failed(
    outcome: Outcome | None,
    summaries: list[dict[str, object]],
    number: int,
    repeat: int,
    exc: RunnerError,
) -> Outcome:
    """A repetition refused before it ran (the website gone, the project deleted)."""
    assert outcome is not None
    summaries.append({"repetition": number, "status": "failed", "error": str(exc)})
    series = _series(outcome, summaries, repeat)
    series.summary["stopped"] = (
        f"repetition {number} of {repeat} failed: {exc}; the series stopped, "
        f"{repeat - number} not run"
    )
    return Outcome(code=exc.exit_code, run_dir=outcome.run_dir, summary=series.summary)


async def stop_controllers(inventory: Inventory) -> None:
    """Stop every site's controller the series kept up for a run that will not come."""

    async def stop(entry: Any) -> None:
        with contextlib.suppress(Exception):  # a site that fails here failed its run already
            async with open_site(entry) as conn:
                await conn.stop_controller()

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STOP_DEADLINE):
            await asyncio.gather(*(stop(s) for s in inventory.sites))


def series_lines(summary: dict[str, Any]) -> list[str]:
    """The series for a terminal: one line per run (and its failures), then how it ended."""
    lines: list[str] = []
    repeat = summary.get("repeat")
    for r in summary.get("repetitions", []):
        head = f"repetition {r.get('repetition')} of {repeat}: "
        if "run_id" not in r:
            lines.append(head + f"failed before it ran: {r.get('error')}")
            continue
        lines.append(
            head + f"run {r['run_id']} {r.get('status')} in {r.get('elapsed_seconds')} s "
            f"(app {r.get('app_seconds')} s, {r.get('website_requests')} website requests); "
            f"project {r.get('project_id')}; report {r.get('report')}"
        )
        failures = r.get("failures")
        if isinstance(failures, dict):
            lines += [f"  {site}: {why}" for site, why in failures.items()]
    if summary.get("stopped"):
        lines.append(str(summary["stopped"]))
    return lines
