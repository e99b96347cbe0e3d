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
from dataclasses import dataclass, field

from pydantic import SecretStr

from fcapi.models import Project
from fcapi.stats import RequestStats
from fcapi.website import WebsitePool
from fedinfra.inventory import Inventory
from runner.engine.checkpoint import RunState
from runner.engine.context import RunContext, RunOptions
from runner.engine.project_phases import project_pipeline
from runner.engine.sampler import Sampler
from runner.engine.site_phases import site_pipeline
from runner.outputs.progress import Progress
from runner.outputs.resources import SiteResources
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
    #: each sampled site's resource use during this attempt (runner.engine.sampler)
    resources: dict[str, SiteResources] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and self.project is not None and self.project.status == "finished"


class Orchestrator:
    """Runs the pipelines of one run to their end and closes every client it opened."""

    def __init__(
        self,
        inventory: Inventory,
        workflow: Workflow,
        credentials: dict[str, SecretStr] | WebsitePool,
        state: RunState,
        options: RunOptions,
        progress: Progress,
    ) -> None:
        """`credentials`: the passwords, or a pool already holding them (and maybe logins)."""
        self.context = RunContext(inventory, workflow, credentials, state, options, progress)
        self.sampler = Sampler(self.context, workflow.sample_seconds)

    async def run(self) -> RunResult:
        run = self.context
        run.state.begin_attempt()
        await run.saver.flush()  # the run can be resumed from its first step on
        self.sampler.start()
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
            run.state.end_attempt("interrupted", run.failures)
            await run.saver.flush()
            raise
        finally:
            await self.close()
        app_seconds = None
        if run.running_seen is not None and run.ended_seen is not None:
            app_seconds = run.ended_seen - run.running_seen
        run.state.project_status = run.project.status if run.project is not None else None
        result = RunResult(
            state=run.state,
            project=run.project,
            stats=run.pool.stats,
            app_seconds=app_seconds,
            wall_seconds=time.monotonic() - run.run_started,
            failures={**missing_results(run.state), **run.failures},
            resources=self.sampler.results(),
        )
        run.state.phase = "done" if result.ok else "failed"
        run.state.end_attempt("completed" if result.ok else "failed", result.failures)
        await run.saver.flush()
        return result

    async def close(self) -> None:
        await self.sampler.stop()  # its last samples run over the connections closed below
        await self.context.pool.aclose()
        for site in self.context.sites.values():
            if site.controller is not None:
                await site.controller.aclose()
            if site.conn is not None:
                with contextlib.suppress(Exception):
                    await site.conn.close()


def missing_results(state: RunState) -> dict[str, str]:
    """The sites without a result of a finished project: such a run is not complete.

    Collection says so itself when a controller lists none; this holds whatever the path
    (a resume that skipped a site, a result lost between attempts), so that `completed`
    always means every site's result is in the run's folder.
    """
    if state.project_status != "finished":
        return {}
    return {
        name: f"site {name}: no result of project {state.project_id} was collected"
        for name, site in state.sites.items()
        if not any(c.kind == "result" for c in site.collected)
    }


def finished_result(state: RunState) -> RunResult:
    """What a run that finished (its state says `done`) returned, read back from its state.

    For a run killed between its last checkpoint and its outputs: the outputs are written
    from this, and nothing outside is touched again. No request was made, and the time is
    that of its last attempt.
    """
    last = state.attempts[-1] if state.attempts else None
    wall = 0.0
    if last is not None and last.finished_at is not None:
        wall = (last.finished_at - last.started_at).total_seconds()
    project = None
    if state.project_id is not None:
        project = Project(id=state.project_id, status=state.project_status or "")
    return RunResult(
        state=state,
        project=project,
        stats=RequestStats(),
        app_seconds=None,
        wall_seconds=wall,
        failures={},
    )


__all__ = ["Orchestrator", "RunOptions", "RunResult", "finished_result"]
