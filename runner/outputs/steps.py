"""The project's workflow step by step: which app each step ran and what each site got from it.

A workflow of several apps leaves one result per step and site (`sites/<site>/run<n>/step<s>/`,
numbered as the controller numbers them, from 1), so metrics.json and the report list the
steps with their app's slug and id, whether every site's result came home, and each site's
files of that step. Steps are those the workflow names, and any further one a controller
listed (an existing project's workflow is not in the file).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from runner.engine.checkpoint import RunState
from runner.outputs.model import OutputModel

StepStatus = Literal["ok", "incomplete"]


class StepMetrics(OutputModel):
    #: the step's number, as the controller numbers a project's steps (from 1)
    step: int
    #: the app's slug and id (None: not known, e.g. the step of an existing project)
    app: str | None = None
    app_id: int | None = None
    #: ok: every site's result of this step was collected
    status: StepStatus
    #: each site's files of this step (unpacked from its result zips, every run), by site
    files: dict[str, list[str]] = Field(default_factory=dict)


def step_metrics(state: RunState) -> list[StepMetrics]:
    """One entry per step: the workflow's steps in order, then any other step collected."""
    collected = {c.step for s in state.sites.values() for c in s.collected if c.kind == "result"}
    numbers = sorted(set(range(1, len(state.steps) + 1)) | collected)
    steps: list[StepMetrics] = []
    for number in numbers:
        named = state.steps[number - 1] if number <= len(state.steps) else None
        files: dict[str, list[str]] = {}
        for site, record in state.sites.items():
            results = [c for c in record.collected if c.kind == "result" and c.step == number]
            if results:
                files[site] = sorted(f for c in results for f in c.files)
        steps.append(
            StepMetrics(
                step=number,
                app=named.slug if named else None,
                app_id=named.app_id if named else None,
                status="ok" if len(files) == len(state.sites) else "incomplete",
                files=files,
            )
        )
    return steps
