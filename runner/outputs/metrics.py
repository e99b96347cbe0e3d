"""metrics.json: how a run went and what it cost.

Status, timings per phase and per site, website requests by endpoint and user, bytes moved.
Where a field means what a fedflow metrics file means, it carries fedflow's name (`status`,
`started_at`, `finished_at`, `config_path`, `log_path`, `metadata`,
`phases[].name/duration_seconds/details`, `counters`,
`resources.wall_clock_seconds/process_cpu_seconds/peak_rss_kib`, `error`), so tools written for
fedflow's file read ours. Built by pure functions from the run's state; no token or password
reaches it (the state's tokens are not read).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field

from fedinfra.inventory import Inventory, SiteEntry
from runner.engine.checkpoint import PHASE_ORDER, Attempt, PhaseRecord, RunState, utcnow
from runner.outputs.model import OutputModel
from runner.outputs.resources import SiteResources
from runner.outputs.steps import StepMetrics, step_metrics

METRICS_FILE = "metrics.json"
#: fcapi's default politeness: 3 requests/s per user, burst 3
DEFAULT_LIMIT = (3.0, 3)

RunStatus = Literal["completed", "failed", "interrupted"]
SiteStatus = Literal["ok", "failed", "incomplete"]


class RequestStatsView(Protocol):
    """What metrics read of `fcapi.stats.RequestStats`."""

    @property
    def total(self) -> int: ...

    def by_endpoint(self) -> dict[str, int]: ...

    def by_user(self) -> dict[str, int]: ...

    def max_rate(self, window: float = 1.0) -> dict[str, float]: ...

    def over_limit(self, rate: float, burst: int) -> dict[str, float]: ...


class PhaseTiming(OutputModel):
    name: str
    state: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    #: seconds from the run's start, for timelines
    start_offset_seconds: float | None = None
    details: dict[str, str] = Field(default_factory=dict)


class SiteMetrics(OutputModel):
    name: str
    fc_user: str
    role: str
    status: SiteStatus
    error: str | None = None
    phases: list[PhaseTiming]
    files_uploaded: int
    bytes_uploaded: int
    bytes_uploaded_on_host: int
    bytes_downloaded: int
    #: the result zips as downloaded
    results: list[str]
    #: the files unpacked from each zip, by the zip's path
    result_files: dict[str, list[str]]
    logs: list[str]
    #: who held the site's FeatureCloud password: the runner, or the site's own host
    credentials: Literal["runner", "host"] = "runner"
    #: the host's and its controller's use, sampled during the run (runner.engine.sampler)
    resources: SiteResources | None = None


class RequestMetrics(OutputModel):
    total: int = 0
    by_endpoint: dict[str, int] = Field(default_factory=dict)
    by_user: dict[str, int] = Field(default_factory=dict)
    rate_window_seconds: float = 1.0
    max_rate_per_user: dict[str, float] = Field(default_factory=dict)
    max_rate: float = 0.0
    #: the token bucket each user was held to, and how far any user went beyond it:
    #: the most requests in any interval over `burst + rate * length` (<= 0: never over)
    limit_rate: float | None = None
    limit_burst: int | None = None
    over_limit_per_user: dict[str, float] = Field(default_factory=dict)
    over_limit: float = 0.0


class BytesMoved(OutputModel):
    uploaded_from_runner: int
    uploaded_on_hosts: int
    downloaded: int


class Resources(OutputModel):
    wall_clock_seconds: float
    process_cpu_seconds: float
    peak_rss_kib: int


class Metrics(OutputModel):
    status: RunStatus
    started_at: datetime
    finished_at: datetime
    wall_clock_seconds: float
    config_path: str
    log_path: str | None = None
    error: str | None = None
    run_id: str
    stack: str
    app: str | None
    project_id: int | None
    coordinator: str
    metadata: dict[str, str | int | float | None]
    phases: list[PhaseTiming]
    sites: list[SiteMetrics]
    requests: RequestMetrics
    bytes_moved: BytesMoved
    counters: dict[str, int | float]
    resources: Resources | None = None
    results: list[str]
    result_files: list[str]
    logs: list[str]
    #: every start and resume of the run and how each ended; `status` is how the run stands
    attempts: list[Attempt] = Field(default_factory=list)
    #: the workflow's apps in order (`app` is the first), and each step's app and files
    apps: list[str] = Field(default_factory=list)
    steps: list[StepMetrics] = Field(default_factory=list)
    #: what ran where, on what (runner.provenance.record); None for a run without a record
    provenance: dict[str, Any] | None = None


def request_metrics(
    stats: RequestStatsView | None,
    window: float = 1.0,
    limit: tuple[float, int] = DEFAULT_LIMIT,
) -> RequestMetrics:
    if stats is None:
        return RequestMetrics(rate_window_seconds=window)
    rates = {u: round(r, 3) for u, r in sorted(stats.max_rate(window).items())}
    over = {u: round(x, 3) for u, x in sorted(stats.over_limit(*limit).items())}
    return RequestMetrics(
        limit_rate=limit[0],
        limit_burst=limit[1],
        over_limit_per_user=over,
        over_limit=max(over.values(), default=0.0),
        total=stats.total,
        by_endpoint=dict(sorted(stats.by_endpoint().items())),
        by_user=dict(sorted(stats.by_user().items())),
        rate_window_seconds=window,
        max_rate_per_user=rates,
        max_rate=max(rates.values(), default=0.0),
    )


def process_resources(wall_clock_seconds: float) -> Resources:
    """This process's CPU time and peak memory so far (fedflow's `resources`)."""
    return Resources(
        wall_clock_seconds=round(wall_clock_seconds, 6),
        process_cpu_seconds=round(time.process_time(), 6),
        peak_rss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    )


def _timing(name: str, record: PhaseRecord, start: datetime) -> PhaseTiming:
    duration = record.duration_seconds
    return PhaseTiming(
        name=name,
        state=record.state,
        started_at=record.started_at,
        finished_at=record.finished_at,
        duration_seconds=round(duration, 6) if duration is not None else None,
        start_offset_seconds=(
            round((record.started_at - start).total_seconds(), 6) if record.started_at else None
        ),
        details={"message": record.message} if record.message else {},
    )


def phase_rank(name: str) -> tuple[int, str]:
    """Sort key: phases in run order, unknown ones after them by name."""
    return (PHASE_ORDER.index(name) if name in PHASE_ORDER else len(PHASE_ORDER), name)


def _site_status(state: RunState, name: str) -> SiteStatus:
    site = state.sites[name]
    if site.error or any(p.state == "failed" for p in site.phases.values()):
        return "failed"
    return "ok" if site.collect_done else "incomplete"


def _merged_span(records: list[PhaseRecord]) -> PhaseRecord:
    """One phase over all sites: from the first start to the last finish, failed if any failed."""
    starts = [r.started_at for r in records if r.started_at is not None]
    ends = [r.finished_at for r in records if r.finished_at is not None]
    states = {r.state for r in records}
    merged = (
        "failed" if "failed" in states else "running" if states & {"running", "pending"} else "ok"
    )
    return PhaseRecord(
        state=merged,
        started_at=min(starts) if starts else None,
        finished_at=max(ends) if ends and len(ends) == len(records) else None,
    )


def _overall_phases(state: RunState) -> list[PhaseTiming]:
    """Run-level phases, and each site phase spanning its first start to its last finish."""
    spans: dict[str, PhaseRecord] = dict(state.phases)
    names = sorted({n for s in state.sites.values() for n in s.phases}, key=phase_rank)
    for name in names:
        records = [s.phases[name] for s in state.sites.values() if name in s.phases]
        spans.setdefault(name, _merged_span(records))
    timings = [_timing(n, r, state.created_at) for n, r in spans.items()]
    return sorted(timings, key=lambda t: (t.start_offset_seconds is None, t.start_offset_seconds))


def _site_metrics(state: RunState, entry: SiteEntry) -> SiteMetrics:
    s = state.sites[entry.name]
    local = [f for f in s.uploaded.values() if f.location == "local"]
    host = [f for f in s.uploaded.values() if f.location == "host"]
    ordered = sorted(s.phases.items(), key=lambda kv: phase_rank(kv[0]))
    return SiteMetrics(
        name=entry.name,
        fc_user=entry.fc_user,
        role=entry.role,
        status=_site_status(state, entry.name),
        error=s.error,
        phases=[_timing(n, r, state.created_at) for n, r in ordered],
        files_uploaded=len(s.uploaded),
        bytes_uploaded=sum(f.size for f in local),
        bytes_uploaded_on_host=sum(f.size for f in host),
        bytes_downloaded=sum(c.size for c in s.collected),
        results=sorted(c.path for c in s.collected if c.kind == "result"),
        result_files={
            c.path: sorted(c.files) for c in s.collected if c.kind == "result" and c.files
        },
        logs=sorted(c.path for c in s.collected if c.kind == "log"),
        credentials=entry.credentials,
    )


def _run_status(state: RunState, sites: list[SiteMetrics]) -> RunStatus:
    """Completed only when the run reached its end with every site ok."""
    if state.phase == "done" and all(s.status == "ok" for s in sites):
        return "completed"
    if state.phase == "failed" or any(s.status == "failed" for s in sites):
        return "failed"
    return "interrupted"


def _bytes_moved(sites: list[SiteMetrics]) -> BytesMoved:
    return BytesMoved(
        uploaded_from_runner=sum(s.bytes_uploaded for s in sites),
        uploaded_on_hosts=sum(s.bytes_uploaded_on_host for s in sites),
        downloaded=sum(s.bytes_downloaded for s in sites),
    )


def _counters(
    sites: list[SiteMetrics], moved: BytesMoved, requests: RequestMetrics
) -> dict[str, int | float]:
    """fedflow's flat `counters`: the totals a sweep compares run against run."""
    collected = sum(len(s.results) + len(s.logs) for s in sites)
    return {
        "bytes_downloaded": moved.downloaded,
        "bytes_uploaded": moved.uploaded_from_runner,
        "bytes_uploaded_on_hosts": moved.uploaded_on_hosts,
        "files_collected": collected,
        "files_uploaded": sum(s.files_uploaded for s in sites),
        "sites": len(sites),
        "sites_failed": sum(1 for s in sites if s.status == "failed"),
        "website_requests": requests.total,
    }


def _metadata(
    state: RunState, inventory: Inventory, sites: int
) -> dict[str, str | int | float | None]:
    """fedflow's free-form `metadata`: what names this run among others."""
    return {
        "run_id": state.run_id,
        "stack": inventory.stack,
        "app": state.app,
        "project_id": state.project_id,
        "coordinator": inventory.coordinator.name,
        "sites": sites,
    }


def build_metrics(
    state: RunState,
    inventory: Inventory,
    *,
    workflow_path: Path,
    stats: RequestStatsView | None = None,
    finished_at: datetime | None = None,
    status: RunStatus | None = None,
    error: str | None = None,
    log_path: str | None = None,
    resources: Resources | None = None,
    rate_window: float = 1.0,
    limit: tuple[float, int] = DEFAULT_LIMIT,
    provenance: dict[str, Any] | None = None,
    site_resources: Mapping[str, SiteResources] | None = None,
) -> Metrics:
    """The metrics of a run from its state; `status` defaults to what the state says.

    `site_resources`: each site's sampled resource use (this attempt's), by site.
    """
    end = finished_at or utcnow()
    sites = [_site_metrics(state, e) for e in inventory.sites if e.name in state.sites]
    for site in sites:
        site.resources = (site_resources or {}).get(site.name)
    requests = request_metrics(stats, rate_window, limit)
    moved = _bytes_moved(sites)
    return Metrics(
        status=status if status is not None else _run_status(state, sites),
        started_at=state.created_at,
        finished_at=end,
        wall_clock_seconds=round((end - state.created_at).total_seconds(), 6),
        config_path=str(workflow_path),
        log_path=log_path,
        error=error,
        run_id=state.run_id,
        stack=inventory.stack,
        app=state.app,
        project_id=state.project_id,
        coordinator=inventory.coordinator.name,
        metadata=_metadata(state, inventory, len(sites)),
        phases=_overall_phases(state),
        sites=sites,
        requests=requests,
        bytes_moved=moved,
        counters=_counters(sites, moved, requests),
        resources=resources,
        results=sorted(p for s in sites for p in s.results),
        result_files=sorted(f for s in sites for fs in s.result_files.values() for f in fs),
        logs=sorted(p for s in sites for p in s.logs),
        attempts=state.attempts,
        apps=state.slugs,
        steps=step_metrics(state),
        provenance=provenance,
    )


def write_metrics(run_dir: Path, metrics: Metrics) -> Path:
    return metrics.write_json(run_dir / METRICS_FILE)


def load_metrics(path: Path) -> Metrics:
    return Metrics.model_validate_json(path.read_text(encoding="utf-8"))


def site_outcomes(metrics: Metrics) -> Mapping[str, str]:
    """`site -> "ok" | "failed: <what>" | "incomplete"`, for the CLI's closing lines."""
    return {
        s.name: (f"failed: {s.error}" if s.status == "failed" and s.error else s.status)
        for s in metrics.sites
    }
