"""What a finished (or failed) run leaves behind: metrics.json, report.html, manifest.json.

Written in that order, each atomically, so the manifest lists the other two with their
hashes; then a short summary for the terminal or `--json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fcapi.files import write_atomic
from fedinfra.inventory import Inventory
from runner.outputs.manifest import (
    build_metrics,
    process_resources,
    site_outcomes,
    write_manifest,
    write_metrics,
)
from runner.outputs.report import render_report
from runner.plan.workflow import Workflow

if TYPE_CHECKING:
    from runner.engine.orchestrate import RunResult

REPORT_FILE = "report.html"


def write_outputs(
    result: RunResult, inventory: Inventory, workflow: Workflow, run_dir: Path
) -> dict[str, object]:
    """Write the run's outputs; return the summary `--json` prints."""
    metrics = build_metrics(
        result.state,
        inventory,
        workflow_path=workflow.source,
        stats=result.stats,
        error="; ".join(f"{k}: {v}" for k, v in sorted(result.failures.items())) or None,
        resources=process_resources(result.wall_seconds),
    )
    if result.app_seconds is not None:
        metrics.counters["app_seconds"] = round(result.app_seconds, 3)
        metrics.counters["orchestration_seconds"] = round(
            result.wall_seconds - result.app_seconds, 3
        )
    metrics.counters["wall_seconds"] = round(result.wall_seconds, 3)
    write_metrics(run_dir, metrics)
    write_atomic(run_dir / REPORT_FILE, render_report(metrics))
    manifest = write_manifest(run_dir, result.state.run_id)
    return {
        "run_id": result.state.run_id,
        "status": metrics.status,
        "project_id": result.state.project_id,
        "project_status": result.project.status if result.project else None,
        "run_dir": str(run_dir),
        "report": str(run_dir / REPORT_FILE),
        "sites": dict(site_outcomes(metrics)),
        "failures": dict(sorted(result.failures.items())),
        "results": metrics.results,
        "files": len(manifest.files),
        "website_requests": metrics.requests.total,
        "wall_seconds": round(result.wall_seconds, 3),
        "app_seconds": metrics.counters.get("app_seconds"),
    }
