"""A finished run as an MLflow run: parameters, metrics, tags and artifacts.

Everything comes from the files the writers left (metrics.json, manifest.json, the result
files) and from the state's record of what was uploaded (its hashes, never its tokens), so
the record says what the run folder says. What is never sent: state.json (the project
tokens), the inputs' inventory, the sites' logs (an app may print anything into them).
Imported only when a run is tracked: it imports MLflow.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from runner.engine.checkpoint import RunState
from runner.outputs.manifest import MANIFEST_FILE, Manifest
from runner.outputs.metrics import METRICS_FILE, Metrics, load_metrics
from runner.outputs.results import number, read_results
from runner.plan.workflow import CONFIG_NAME

#: what MLflow accepts in a key; anything else becomes `_`
_KEY = re.compile(r"[^A-Za-z0-9_\-. /:]")
#: MLflow's limits on a parameter's and a tag's value
PARAM_MAX = 6000
TAG_MAX = 8000
ARTIFACTS = ("report.html", METRICS_FILE, MANIFEST_FILE)


def key(text: str) -> str:
    return _KEY.sub("_", text)[:250]


def params(metrics: Metrics, manifest: Manifest | None, state: RunState) -> dict[str, str]:
    """What the run was: app, stack, sites, and the sha256 of the config and of the data."""
    found: dict[str, str] = {
        "run_id": metrics.run_id,
        "app": metrics.app or "",
        "stack": metrics.stack,
        "coordinator": metrics.coordinator,
        "sites": ",".join(s.name for s in metrics.sites)[:PARAM_MAX],
        "site_count": str(len(metrics.sites)),
        "project_id": str(metrics.project_id),
    }
    if manifest is not None:
        for f in manifest.files:
            if f.path == "inputs/workflow.toml":
                found["workflow_sha256"] = f.sha256
    for site, record in state.sites.items():
        for name, uploaded in record.uploaded.items():
            if uploaded.sha256 is None:
                continue  # a host file: its bytes never reached the runner
            if name == CONFIG_NAME:
                found["config_sha256"] = uploaded.sha256
            else:
                found[key(f"data.{site}.{name}.sha256")] = uploaded.sha256
    return found


def run_metrics(metrics: Metrics, run_dir: Path) -> dict[str, float]:
    """Phase timings, counters, request rates, and the sites' results where they are numbers."""
    found: dict[str, float] = {
        key(f"phase.{p.name}.seconds"): p.duration_seconds
        for p in metrics.phases
        if p.duration_seconds is not None
    }
    found.update({key(k): float(v) for k, v in metrics.counters.items()})
    found["requests.max_rate"] = metrics.requests.max_rate
    results = read_results(run_dir, metrics)
    for label in results.labels:
        value = number(results.value(label) or "")
        if value is not None:
            found[key(f"result.{label}")] = value
    for site in results.sites:
        for label, text in site.values.items():
            value = number(text)
            if value is not None:
                found[key(f"result.{site.site}.{label}")] = value
    if results.agree is not None:
        found["result.sites_agree"] = 1.0 if results.agree else 0.0
    return found


def tags(metrics: Metrics, run_dir: Path) -> dict[str, str]:
    failing = [s.name for s in metrics.sites if s.status == "failed"]
    found = {
        "fedstack.outcome": metrics.status,
        "fedstack.failing_sites": ",".join(failing),
        "fedstack.run_dir": str(run_dir),
    }
    if metrics.error:
        found["fedstack.error"] = metrics.error[:TAG_MAX]
    return found


def experiment_id(client: MlflowClient, name: str, root: Path | None) -> str:
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    location = root.as_uri() if root is not None else None
    return client.create_experiment(name, artifact_location=location)


def record_run(
    uri: str, artifact_root: Path | None, experiment: str, run_dir: Path, state: RunState
) -> str:
    """Log the run under the tracking URI (in `experiment`; `artifact_root`: a store the
    runner makes itself); its MLflow run id."""
    metrics = load_metrics(run_dir / METRICS_FILE)
    manifest_path = run_dir / MANIFEST_FILE
    manifest = None
    if manifest_path.is_file():
        manifest = Manifest.model_validate_json(manifest_path.read_bytes())
    if artifact_root is not None:
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    start = int(metrics.started_at.timestamp() * 1000)
    run = client.create_run(
        experiment_id(client, experiment, artifact_root), start_time=start, run_name=metrics.run_id
    )
    rid = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        rid,
        metrics=[Metric(k, v, now, 0) for k, v in run_metrics(metrics, run_dir).items()],
        params=[Param(k, v) for k, v in params(metrics, manifest, state).items()],
        tags=[RunTag(k, v) for k, v in tags(metrics, run_dir).items()],
    )
    for name in ARTIFACTS:
        if (run_dir / name).is_file():
            client.log_artifact(rid, str(run_dir / name))
    for rel in metrics.result_files:
        # sites/<site>/run<n>/step<s>/<file> -> results/<site>/run<n>/step<s>/
        parent = Path(rel).parent
        if parent.parts[:1] == ("sites",):
            where = Path("results", *parent.parts[1:]).as_posix()
            client.log_artifact(rid, str(run_dir / rel), where)
    end = int(metrics.finished_at.timestamp() * 1000)
    client.set_terminated(rid, "FINISHED" if metrics.status == "completed" else "FAILED", end)
    return str(rid)
