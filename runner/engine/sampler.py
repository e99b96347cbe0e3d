"""Every few seconds, each connected site's CPU, memory, disk and network, and its controller's.

A sample is one short shell line (runner.engine.procstats) over a connection the run holds
already, so nothing is installed on a host; the sites of one machine share its line. Sampling
is a by-product: a sample that fails or times out is a miss, counted and noted, never a failure
of the run; a host still busy with the previous sample skips the tick, so a hanging host
neither stalls the run nor piles up commands.
Each sample records the phase its site was in, so metrics.json can say what each phase cost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from runner.engine.checkpoint import utcnow
from runner.engine.context import RunContext, SiteRun, failure_line
from runner.engine.procstats import (
    SITES_PER_COMMAND,
    ControllerKind,
    Counters,
    Reading,
    parse_samples,
    reading,
    sample_command,
)
from runner.outputs.resources import ResourceSample, SiteResources, site_resources

#: the longest one sample may take (`docker stats` alone needs about two seconds)
SAMPLE_TIMEOUT = 15.0
#: a site's phase between its own phases and the run's (waiting at a barrier)
WAITING = "waiting"
#: how soon a machine's first sample follows its controllers' start, rather than up to a whole
#: interval later: rates need two samples, and a run of a few seconds would otherwise have one
FIRST_SAMPLE_SECONDS = 0.25


@dataclass
class SiteSamples:
    """One site's samples so far, and the counters of its last sample (rates need them)."""

    samples: list[ResourceSample] = field(default_factory=list)
    previous: Counters | None = None
    misses: int = 0
    skipped: int = 0
    last_miss: str | None = None
    controller: ControllerKind | None = None


@dataclass
class HostGroup:
    """Sites that share a machine (`SiteEntry.host()`), sampled by one command per tick."""

    sites: list[str]
    in_flight: asyncio.Task[None] | None = None
    sampled: bool = False  # a sample has been started (the early first one is due until then)


def phase_now(run: RunContext, site: SiteRun) -> str:
    """The site's phase under way, else the run's (a site waits while the project runs)."""
    name = site.entry.name
    record = run.state.site(name).phases.get(site.current_phase or "")
    if site.current_phase is not None and record is not None and record.state == "running":
        return site.current_phase
    running = [n for n, r in run.state.phases.items() if r.state == "running"]
    return running[-1] if running else WAITING


class Sampler:
    """Samples every connected site every `interval` seconds until `stop()`: each machine
    once per tick, its connected sites together, over the first of their connections."""

    def __init__(self, run: RunContext, interval: float) -> None:
        self.run = run
        self.interval = interval
        self.sites = {name: SiteSamples() for name in run.sites}
        self.groups: list[HostGroup] = []
        by_host: dict[str, list[str]] = {}
        for name, site in run.sites.items():
            by_host.setdefault(site.entry.host(), []).append(name)
        for names in by_host.values():
            for i in range(0, len(names), SITES_PER_COMMAND):
                self.groups.append(HostGroup(names[i : i + SITES_PER_COMMAND]))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._loop(), name="sampler")

    async def _loop(self) -> None:
        """A tick every `interval` for every machine; in between, a machine not sampled yet is
        sampled once as soon as the controller of every site connected on it is up."""
        clock = asyncio.get_running_loop().time
        due = clock()
        while True:
            if clock() >= due:
                due = max(due + self.interval, clock())
                for group in self.groups:
                    self._tick(group)
            else:
                for group in self.groups:
                    if not group.sampled and self._controllers_up(group):
                        self._tick(group)
            pending = any(not g.sampled for g in self.groups)
            wait = due - clock()
            await asyncio.sleep(max(0.0, min(wait, FIRST_SAMPLE_SECONDS) if pending else wait))

    def _controllers_up(self, group: HostGroup) -> bool:
        """Every site connected on the machine has its controller up (its phase done)."""
        connected = [n for n in group.sites if self.run.sites[n].conn]
        phases = [self.run.state.site(n).phases.get("controller") for n in connected]
        return bool(connected) and all(p is not None and p.state == "ok" for p in phases)

    def _tick(self, group: HostGroup) -> None:
        """Sample a machine's connected sites, unless its previous sample is still running."""
        ready = [n for n in group.sites if self.run.sites[n].ready and self.run.sites[n].conn]
        if not ready:
            return
        if group.in_flight is not None and not group.in_flight.done():
            for name in ready:
                self.sites[name].skipped += 1
            return
        group.sampled = True
        group.in_flight = asyncio.create_task(
            self._sample([self.run.sites[n] for n in ready]), name=f"sample-{ready[0]}"
        )

    async def _sample(self, sites: list[SiteRun]) -> None:
        conn = sites[0].conn
        assert conn is not None
        phases = [phase_now(self.run, site) for site in sites]
        t = (utcnow() - self.run.state.created_at).total_seconds()
        targets = [(s.entry.controller.data_dir, s.entry.controller.name) for s in sites]
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT + 5):
                result = await conn.run(sample_command(targets), timeout=SAMPLE_TIMEOUT)
            found: Sequence[Counters | Exception] = parse_samples(result.stdout, targets)
        except Exception as exc:
            # a sample is a by-product and never the run's end: a transport's own errors
            # (SiteError, a lost connection), a timeout are all a miss, for each of the sites
            found = [exc] * len(sites)
        for site, phase, counters in zip(sites, phases, found, strict=True):
            self._keep(site, phase, t, counters)

    def _keep(self, site: SiteRun, phase: str, t: float, found: Counters | Exception) -> None:
        own = self.sites[site.entry.name]
        if isinstance(found, Exception):
            own.misses += 1
            own.last_miss = failure_line(found)[:200]
            if own.misses == 1:  # once per site: the run's own lines matter more
                self.run.progress.note(
                    site.entry.name, f"resource sample missed (the run goes on): {own.last_miss}"
                )
            return
        now = reading(own.previous, found)
        own.previous = found
        if found.controller is not None:
            own.controller = found.controller.kind
        own.samples.append(ResourceSample(phase=phase, t=round(t, 2), **_rounded(now)))

    async def stop(self) -> None:
        """Stop sampling (before the connections close) and wait for samples in flight."""
        tasks = [self._task, *(g.in_flight for g in self.groups)]
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
