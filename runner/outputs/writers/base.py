"""The base of every file a finished (or failed) run writes into its directory.

Every output reads the same context: what the run returned, the inventory and the workflow it
ran, and the metrics, built once so that every file tells the same story (one end time, one set
of counters). A writer owns one file and writes it atomically, so a reader never sees half of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from fedinfra.inventory import Inventory
from runner.outputs.metrics import Metrics, build_metrics, process_resources
from runner.plan.workflow import Workflow
from runner.provenance.record import load_provenance

if TYPE_CHECKING:
    from runner.engine.orchestrate import RunResult


@dataclass(frozen=True)
class OutputContext:
    """What every writer may read; none of it holds a password or a token."""

    result: RunResult
    inventory: Inventory
    workflow: Workflow
    run_dir: Path
    metrics: Metrics

    @classmethod
    def of_run(
        cls, result: RunResult, inventory: Inventory, workflow: Workflow, run_dir: Path
    ) -> OutputContext:
        """The context of a run that just ended, its metrics measured now."""
        failures = "; ".join(f"{k}: {v}" for k, v in sorted(result.failures.items()))
        attempts = result.state.attempts
        metrics = build_metrics(
            result.state,
            inventory,
            workflow_path=workflow.source,
            # the end of the attempt that ended the run, also when its outputs come later
            finished_at=attempts[-1].finished_at if attempts else None,
            stats=result.stats,
            error=failures or None,
            resources=process_resources(result.wall_seconds),
            provenance=load_provenance(run_dir),
            site_resources=result.resources,
        )
        if result.app_seconds is not None:
            metrics.counters["app_seconds"] = round(result.app_seconds, 3)
            metrics.counters["orchestration_seconds"] = round(
                result.wall_seconds - result.app_seconds, 3
            )
        metrics.counters["wall_seconds"] = round(result.wall_seconds, 3)
        return cls(result, inventory, workflow, run_dir, metrics)


class Writer(ABC):
    """One output file of a run; the registry (`runner.outputs.writers`) runs them in order."""

    #: how the summary names this output
    name: ClassVar[str]
    #: the file it writes, relative to the run's directory
    file: ClassVar[str]

    def path(self, context: OutputContext) -> Path:
        return context.run_dir / self.file

    @abstractmethod
    def write(self, context: OutputContext) -> Path:
        """Write the file atomically and return its path."""
