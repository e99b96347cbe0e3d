"""The runs of an output folder, read back from what each left (`runs` and `show`).

A run folder is `<outdir>/<run-id>/`; its `metrics.json` says how it went and its result
files what it found (runner.outputs.results). A folder without metrics is a run under way
or one that was stopped before its outputs: it is listed as such, not skipped. A metrics file
that cannot be read is refused in one line, naming it: a list that silently left runs out
would mislead more than no list.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from fedinfra.problems import one_line
from runner.engine.checkpoint import RUN_ID
from runner.errors import BadInput
from runner.outputs.metrics import METRICS_FILE, Metrics, load_metrics
from runner.outputs.results import Results, headline, read_results

#: the folders a run's outputs go to when nothing else is said (the workflow's, the demo's)
DEFAULT_OUTDIRS = (Path("runs"), Path("fedstack-runs"))


def outdir_of(given: Path | None) -> Path:
    """The output folder to read: `given`, or the first default that exists."""
    candidates = [given] if given is not None else list(DEFAULT_OUTDIRS)
    for folder in candidates:
        if folder.is_dir():
            return folder
    if given is not None:
        raise BadInput(f"--outdir {given}: no such folder")
    names = " or ".join(str(d) for d in DEFAULT_OUTDIRS)
    raise BadInput(f"no output folder here ({names}): give --outdir DIR")


def run_ids(outdir: Path) -> list[str]:
    """The run folders of `outdir`, oldest first (a run id sorts by its start)."""
    return sorted(p.name for p in outdir.iterdir() if p.is_dir() and RUN_ID.fullmatch(p.name))


def metrics_of(run_dir: Path) -> Metrics | None:
    """The run's metrics; None when it has none yet; `BadInput` when they cannot be read."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    try:
        return load_metrics(path)
    except ValidationError as exc:
        raise BadInput(one_line(exc, lambda p: _damaged(path, p.loc))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot be read: {exc}") from None


def _damaged(path: Path, loc: tuple[int | str, ...]) -> str:
    field = ".".join(map(str, loc))
    return f"{path}: damaged" + (f", field {field}" if field else "")


def run_dir_of(outdir: Path, run_id: str) -> Path:
    if not RUN_ID.fullmatch(run_id) or not (outdir / run_id).is_dir():
        raise BadInput(f"no run {run_id[:60]!r} in {outdir} (python -m runner runs lists them)")
    return outdir / run_id


def row(outdir: Path, run_id: str) -> dict[str, object]:
    """One run at a glance: id, when, app, sites, outcome, duration, result."""
    run_dir = outdir / run_id
    metrics = metrics_of(run_dir)
    if metrics is None:
        return {"run_id": run_id, "status": "under way or stopped (no metrics.json)"}
    results = read_results(run_dir, metrics)
    return {
        "run_id": run_id,
        "started_at": metrics.started_at.isoformat(timespec="seconds"),
        "app": metrics.app,
        "sites": len(metrics.sites),
        "status": metrics.status,
        "wall_seconds": metrics.wall_clock_seconds,
        "result": headline(results),
        "sites_agree": results.agree,
    }


def detail(outdir: Path, run_id: str) -> dict[str, object]:
    """Everything `show` prints of one run."""
    run_dir = run_dir_of(outdir, run_id)
    metrics = metrics_of(run_dir)
    if metrics is None:
        raise BadInput(
            f"run {run_id} in {outdir} has no {METRICS_FILE} yet: it is under way or "
            "was stopped (resume it with --resume)"
        )
    results = read_results(run_dir, metrics)
    return {
        **row(outdir, run_id),
        "finished_at": metrics.finished_at.isoformat(timespec="seconds"),
        "stack": metrics.stack,
        "project_id": metrics.project_id,
        "coordinator": metrics.coordinator,
        "error": metrics.error,
        "website_requests": metrics.requests.total,
        "phases": {p.name: p.duration_seconds for p in metrics.phases},
        "per_site": _per_site(metrics, results),
        "run_dir": str(run_dir),
        "report": str(run_dir / "report.html"),
    }


def _per_site(metrics: Metrics, results: Results) -> dict[str, dict[str, object]]:
    values = {s.site: s.values for s in results.sites}
    return {
        s.name: {"status": s.status, "error": s.error, "values": values.get(s.name, {})}
        for s in metrics.sites
    }
