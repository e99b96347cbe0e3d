"""Bring a site's results and logs home: every run and step its controller lists.

The plan and the unpacking are pure and careful (runner.collect.unpack); this is the I/O between
them. Logs come home even when there is no result. Each finished download is handed to
`on_file` before the next starts, so a resumed collection fetches only what is missing. A
controller that lists no result is a failure here, not a silence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from fcapi.controller import ControllerClient
from runner.collect.unpack import (
    UnpackLimits,
    collected_entry,
    extract_result,
    missing_results,
    pending_downloads,
    plan_downloads,
)
from runner.engine.checkpoint import CollectedFile
from runner.errors import RunnerError


class NoResults(RunnerError):
    """The controller lists no result for the project; one line naming site and project."""


async def collect_site(
    controller: ControllerClient,
    project_id: int,
    run_dir: Path,
    site: str,
    done: Sequence[CollectedFile],
    on_file: Callable[[CollectedFile], Awaitable[None]],
    limits: UnpackLimits,
    after: int = 0,
) -> None:
    """Download and unpack what the site's controller has for the project and `done` lacks,
    within the workflow's bounds on what a result may unpack; only runs numbered above
    `after` (a reused project's earlier runs belong to earlier runs of the runner)."""
    runs = [r for r in await controller.project_runs(project_id) if r.runNr > after]
    for item in pending_downloads(plan_downloads(site, runs), done):
        dest = run_dir / item.path
        extracted: list[Path] = []
        if item.kind == "result":
            await controller.download_result(project_id, item.run, item.step, dest)
            assert item.extract_to is not None
            extracted = await asyncio.to_thread(
                extract_result, dest, run_dir / item.extract_to, limits=limits
            )
        else:
            await controller.download_log(project_id, item.run, item.step, dest)
        await on_file(collected_entry(item, run_dir, extracted))
    if missing_results(runs):
        raise NoResults(f"site {site}: the controller lists no result for project {project_id}")
