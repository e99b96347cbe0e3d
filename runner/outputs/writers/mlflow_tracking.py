"""Where a run is tracked with MLflow, and the step that records it after the writers.

Not a `Writer`: a writer owns one file in the run's folder and runs before the manifest,
while the MLflow record lives outside the folder (a store beside the run folders, or a
server), must carry the manifest as an artifact, and needs a tracking URI that the writers'
context does not hold. So `runner.api` calls `track` once every writer is done; a tracking
failure costs the record, never the run (its folder is complete by then).

MLflow is heavy and optional (`pip install 'fedstack[tracking]'`): this module never
imports it; `runner.outputs.writers.mlflow_record`, which does, is imported only when a run
is tracked.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fcapi.errors import one_line
from runner.engine.checkpoint import RunState
from runner.errors import BadInput

#: the embedded store's folder beside the run folders: an SQLite database and the artifacts
#: (MLflow 3 refuses its old file store without an opt-out, so a database it is)
LOCAL_STORE = "mlruns"
EXPERIMENT = "fedstack"
INSTALL_HINT = "pip install 'fedstack[tracking]'"
#: MLflow's HTTP client retries 7 times with a doubling backoff (minutes) by default; a
#: tracking server that does not answer costs the record, so it is asked briefly
HTTP_TIMEOUT_SECONDS = "20"
HTTP_RETRIES = "2"


@dataclass(frozen=True)
class Tracking:
    """A tracking URI, and the artifact root of a store the runner made itself."""

    uri: str
    artifact_root: Path | None = None
    experiment: str = EXPERIMENT

    @classmethod
    def local(cls, outdir: Path) -> Tracking:
        store = outdir / LOCAL_STORE
        return cls(uri=f"sqlite:///{store / 'mlflow.db'}", artifact_root=store / "artifacts")

    @property
    def shown(self) -> str:
        """The URI as it may be printed: a password in it (`https://u:p@host`) left out."""
        parts = urlsplit(self.uri)
        if parts.password is None:
            return self.uri
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))


def mlflow_installed() -> bool:
    return importlib.util.find_spec("mlflow") is not None


def choose_tracking(outdir: Path, uri: str | None, off: bool) -> tuple[Tracking | None, str]:
    """The run's tracking, and a line to tell the user when it is off though not asked.

    Tracked by default into `<outdir>/mlruns` when MLflow is installed; without it a run
    still runs (the base install has no MLflow) and says in one line how to get a record.
    `--tracking-uri` without MLflow is refused: that user asked for a record.
    """
    if off:
        return None, ""
    if not mlflow_installed():
        if uri is not None:
            raise BadInput(f"--tracking-uri needs MLflow: {INSTALL_HINT}, or pass --no-track")
        return None, (
            f"runner: this run is not tracked: MLflow is not installed ({INSTALL_HINT}; "
            "--no-track says you do not want it)"
        )
    if uri is None:
        return Tracking.local(outdir), ""
    return Tracking(uri=uri), ""


def track(tracking: Tracking, run_dir: Path, state: RunState) -> dict[str, str | None]:
    """Record the finished run; what the summary says of it (the MLflow run id, or why not)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_SECONDS)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRIES)
    # MLflow prints the run's address on stdout, which is the runner's `--json` summary
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from runner.outputs.writers.mlflow_record import record_run

    try:
        run_id = record_run(
            tracking.uri, tracking.artifact_root, tracking.experiment, run_dir, state
        )
    except Exception as exc:  # the run's folder is complete: only the record is lost
        why = one_line(str(exc).replace(tracking.uri, tracking.shown))[:300]
        why = why or type(exc).__name__
        return {"uri": tracking.shown, "run_id": None, "error": why}
    return {"uri": tracking.shown, "run_id": run_id, "error": None}
