"""The outputs of a finished (or failed) run, and the registry that writes them in order.

To add an output (an MLflow record, an RO-Crate): a module here with a `Writer` subclass, its
test, and its line in `WRITERS`. The CLI and `execute()` do not change; the new file is in the
manifest because the manifest comes last.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fedinfra.inventory import Inventory
from runner.outputs.manifest import Manifest
from runner.outputs.metrics import site_outcomes
from runner.outputs.writers.base import OutputContext, Writer
from runner.outputs.writers.manifest_json import ManifestJson
from runner.outputs.writers.metrics_json import MetricsJson
from runner.outputs.writers.report_html import ReportHtml
from runner.outputs.writers.ro_crate import RoCrate
from runner.plan.workflow import Workflow

if TYPE_CHECKING:
    from runner.engine.orchestrate import RunResult

#: run in this order; the manifest last, so that it lists (and hashes) every other output
WRITERS: tuple[Writer, ...] = (MetricsJson(), ReportHtml(), RoCrate(), ManifestJson())


def write_outputs(
    result: RunResult, inventory: Inventory, workflow: Workflow, run_dir: Path
) -> dict[str, object]:
    """Write every output of the run; return the summary `--json` prints."""
    context = OutputContext.of_run(result, inventory, workflow, run_dir)
    written = {writer.name: writer.write(context) for writer in WRITERS}
    return _summary(context, written)


def _summary(context: OutputContext, written: dict[str, Path]) -> dict[str, object]:
    """The closing lines of a run, for the terminal or `--json`."""
    result, metrics = context.result, context.metrics
    manifest = Manifest.model_validate_json(written["manifest"].read_bytes())
    return {
        "run_id": result.state.run_id,
        "status": metrics.status,
        "project_id": result.state.project_id,
        "project_status": result.project.status if result.project else None,
        "run_dir": str(context.run_dir),
        "report": str(written["report"]),
        "sites": dict(site_outcomes(metrics)),
        "failures": dict(sorted(result.failures.items())),
        "results": metrics.results,
        "files": len(manifest.files),
        "website_requests": metrics.requests.total,
        "wall_seconds": round(result.wall_seconds, 3),
        "app_seconds": metrics.counters.get("app_seconds"),
    }
