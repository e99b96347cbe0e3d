"""Drive one workflow across the federation, every site in parallel, resumably.

The run is a pipeline per site (runner.engine.site_phases: connect, controller, join, upload,
finalize, collect, stop) and one for the project (runner.engine.project_phases), with three barriers
where the platform needs every site at once: the coordinator may only `prepare` when every
participant has joined, the project only runs when every site has finalized, and results exist
only once it ended.

Every step that changes something outside this process is written to the checkpoint before
the next one starts, so `--resume` repeats no step that must not happen twice (a project, a
join with a single-use token, a finalize).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from pydantic import SecretStr

from fcapi.models import Project
from fcapi.stats import RequestStats
from fedinfra.inventory import Inventory
from runner.engine.checkpoint import RunState
from runner.engine.context import RunContext, RunOptions
from runner.engine.project_phases import project_pipeline
from runner.engine.site_phases import site_pipeline
from runner.outputs.progress import Progress
from runner.plan.workflow import Workflow


@dataclass
class RunResult:
    state: RunState
    project: Project | None
    stats: RequestStats
    #: seconds between the project entering `running` and its end, as this runner saw them
    app_seconds: float | None
    wall_seconds: float
    failures: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.failures and self.project is not None and self.project.status == "finished"


class Orchestrator:
    """Runs the pipelines of one run to their end and closes every client it opened."""

    def __init__(
        self,
        inventory: Inventory,
        workflow: Workflow,
        passwords: dict[str, SecretStr],
        state: RunState,
        options: RunOptions,
        progress: Progress,
    ) -> None:
        self.context = RunContext(inventory, workflow, passwords, state, options, progress)

    async def run(self) -> RunResult:
        run = self.context
        await run.saver.flush()  # the run can be resumed from its first step on
        try:
            site_tasks = [
                asyncio.create_task(site_pipeline(run, s), name=f"site-{s.entry.name}")
                for s in run.sites.values()
            ]
            project_task = asyncio.create_task(project_pipeline(run), name="project")
            await asyncio.gather(project_task, *site_tasks, return_exceptions=True)
        except asyncio.CancelledError:
            # Ctrl-C: what happened so far goes to disk through the same writer, so no
            # older snapshot still being written can land after it; controllers keep
            # running, the project may still finish without us
            run.state.phase = "interrupted"
            await run.saver.flush()
            raise
        finally:
            await self.close()
        app_seconds = None
        if run.running_seen is not None and run.ended_seen is not None:
            app_seconds = run.ended_seen - run.running_seen
        result = RunResult(
            state=run.state,
            project=run.project,
            stats=run.pool.stats,
            app_seconds=app_seconds,
            wall_seconds=time.monotonic() - run.run_started,
            failures=dict(run.failures),
        )
        run.state.phase = "done" if result.ok else "failed"
        await run.saver.flush()
        return result

    async def close(self) -> None:
        await self.context.pool.aclose()
        for site in self.context.sites.values():
            if site.controller is not None:
                await site.controller.aclose()
            if site.conn is not None:
                with contextlib.suppress(Exception):
                    await site.conn.close()


__all__ = ["Orchestrator", "RunOptions", "RunResult"]
