"""Every few seconds, each connected site's CPU, memory, disk and network, and its controller's.

A sample is one short shell line (runner.engine.procstats) over the connection the run holds
already, so nothing is installed on a host. Sampling is a by-product: a sample that fails or
times out is a miss, counted and noted, never a failure of the run; a host still busy with the
previous sample skips the tick, so a hanging host neither stalls the run nor piles up commands.
Each sample records the phase its site was in, so metrics.json can say what each phase cost.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field

from runner.engine.checkpoint import utcnow
from runner.engine.context import RunContext, SiteRun, failure_line
from runner.engine.procstats import (
    ControllerKind,
    Counters,
    Reading,
    parse_sample,
    reading,
    sample_command,
)
from runner.outputs.resources import ResourceSample, SiteResources, site_resources

#: the longest one sample may take (`docker stats` alone needs about two seconds)
SAMPLE_TIMEOUT = 15.0
#: a site's phase between its own phases and the run's (waiting at a barrier)
WAITING = "waiting"


@dataclass
class SiteSamples:
    """One site's samples so far, and the counters of its last sample (rates need them)."""

    command: str
    samples: list[ResourceSample] = field(default_factory=list)
    previous: Counters | None = None
    in_flight: asyncio.Task[None] | None = None
    misses: int = 0
    skipped: int = 0
    last_miss: str | None = None
    controller: ControllerKind | None = None


def phase_now(run: RunContext, site: SiteRun) -> str:
    """The site's phase under way, else the run's (a site waits while the project runs)."""
    name = site.entry.name
    record = run.state.site(name).phases.get(site.current_phase or "")
    if site.current_phase is not None and record is not None and record.state == "running":
        return site.current_phase
    running = [n for n, r in run.state.phases.items() if r.state == "running"]
    return running[-1] if running else WAITING


class Sampler:
    """Samples every connected site every `interval` seconds until `stop()`."""

    def __init__(self, run: RunContext, interval: float) -> None:
        self.run = run
        self.interval = interval
        self.sites = {
            name: SiteSamples(sample_command(s.entry.controller.data_dir, s.entry.controller.name))
            for name, s in run.sites.items()
        }
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._loop(), name="sampler")

    async def _loop(self) -> None:
        while True:
            for name, site in self.run.sites.items():
                self._tick(name, site)
            await asyncio.sleep(self.interval)

    def _tick(self, name: str, site: SiteRun) -> None:
        """Start a sample of a connected site, unless its previous one is still running."""
        if not site.ready or site.conn is None:
            return
        own = self.sites[name]
        if own.in_flight is not None and not own.in_flight.done():
            own.skipped += 1
            return
        own.in_flight = asyncio.create_task(self._sample(site, own), name=f"sample-{name}")

    async def _sample(self, site: SiteRun, own: SiteSamples) -> None:
        assert site.conn is not None
        phase = phase_now(self.run, site)
        t = (utcnow() - self.run.state.created_at).total_seconds()
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT + 5):
                result = await site.conn.run(own.command, timeout=SAMPLE_TIMEOUT)
            counters = parse_sample(result.stdout)
        except Exception as exc:
            # a sample is a by-product and never the run's end: a transport's own errors
            # (SiteError, a lost connection), a SampleError, a timeout are all a miss
            own.misses += 1
            own.last_miss = failure_line(exc)[:200]
            if own.misses == 1:  # once per site: the run's own lines matter more
                self.run.progress.note(
                    site.entry.name, f"resource sample missed (the run goes on): {own.last_miss}"
                )
            return
        now = reading(own.previous, counters)
        own.previous = counters
        if counters.controller is not None:
            own.controller = counters.controller.kind
        own.samples.append(ResourceSample(phase=phase, t=round(t, 2), **_rounded(now)))

    async def stop(self) -> None:
        """Stop sampling (before the connections close) and wait for samples in flight."""
        tasks = [self._task, *(s.in_flight for s in self.sites.values())]
        for task in tasks:
            if task is not None:
                task.cancel()
        for task in tasks:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def results(self) -> dict[str, SiteResources]:
        """Each sampled site's block of metrics.json; sites never connected have none."""
        return {
            name: site_resources(
                self.interval,
                own.samples,
                misses=own.misses,
                skipped=own.skipped,
                controller=own.controller,
                notes=_notes(own, self.run.sites[name]),
            )
            for name, own in self.sites.items()
            if own.samples or own.misses or own.skipped
        }


def _rounded(now: Reading) -> dict[str, float | None]:
    """A reading's fields, to two decimals: metrics.json stays small and diffable."""
    return {k: None if v is None else round(v, 2) for k, v in asdict(now).items()}


def _notes(own: SiteSamples, site: SiteRun) -> list[str]:
    notes = []
    if own.controller is None:
        notes.append(
            "the controller's own use is unknown: no running process in its pid file "
            f"and no container {site.entry.controller.name!r} (docker stats) on the host"
        )
    if own.misses:
        notes.append(f"{own.misses} samples missed; the last: {own.last_miss}")
    if own.skipped:
        notes.append(f"{own.skipped} ticks skipped while a sample was still running")
    return notes
