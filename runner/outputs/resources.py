"""Each site's resource use in metrics.json, and where the report's small charts draw it.

The samples come from runner.engine.sampler; here they become the `resources` block of a
site (the samples, kept compact, and per phase the mean and maximum of every field) and the
geometry of one line chart per site on the timeline's time axis (seconds since the run
started), so a spike lines up with the phase above it. Pure functions, like the timeline's.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from runner.outputs.model import OutputModel

#: beyond this many samples a site keeps every k-th (the per-phase numbers use all of them):
#: an hour at 2 s for 100 sites would make metrics.json 50 MB
MAX_SAMPLES = 400
FIELDS = (
    "cpu_pct",
    "mem_used_mib",
    "mem_total_mib",
    "disk_free_mib",
    "net_rx_kib_s",
    "net_tx_kib_s",
    "controller_cpu_pct",
    "controller_rss_mib",
)
#: the chart's frame, in SVG user units
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 470, 160, 44, 10, 40, 26


class ResourceSample(OutputModel):
    """One look at a host: `t` seconds since the run started, in phase `phase`."""

    t: float
    phase: str
    #: the host's CPU in use, percent of all its cores (None in the first sample: no interval)
    cpu_pct: float | None
    mem_used_mib: float
    mem_total_mib: float
    disk_free_mib: float
    net_rx_kib_s: float | None
    net_tx_kib_s: float | None
    #: the controller's share of the host's CPU, same scale as `cpu_pct`
    controller_cpu_pct: float | None
    controller_rss_mib: float | None


class FieldStats(OutputModel):
    mean: float | None
    max: float | None


class SiteResources(OutputModel):
    interval_s: float
    samples: list[ResourceSample]
    #: per phase the site was in, the mean and maximum of every field over its samples
    by_phase: dict[str, dict[str, FieldStats]] = Field(default_factory=dict)
    #: samples that failed or timed out, and ticks skipped while one was still in flight
    misses: int = 0
    skipped: int = 0
    #: how the controller's own use was read: its process, its container, or not at all
    controller: Literal["process", "container"] | None = None
    #: why something is missing (no controller found, samples missed), for the report
    notes: list[str] = Field(default_factory=list)
    #: the number of samples taken, when `samples` keeps only every k-th of them
    downsampled_from: int | None = None


def _stats(values: Sequence[float | None]) -> FieldStats:
    known = [v for v in values if v is not None]
    if not known:
        return FieldStats(mean=None, max=None)
    return FieldStats(mean=round(statistics.fmean(known), 2), max=round(max(known), 2))


def by_phase(samples: Sequence[ResourceSample]) -> dict[str, dict[str, FieldStats]]:
    """Mean and maximum of every field per phase, phases in the order they were first seen."""
    phases = list(dict.fromkeys(s.phase for s in samples))
    return {
        phase: {
            name: _stats([getattr(s, name) for s in samples if s.phase == phase]) for name in FIELDS
        }
        for phase in phases
    }


def site_resources(
    interval: float,
    samples: list[ResourceSample],
    *,
    misses: int = 0,
    skipped: int = 0,
    controller: Literal["process", "container"] | None = None,
    notes: Sequence[str] = (),
) -> SiteResources:
    """The block metrics.json keeps for a site, downsampled beyond `MAX_SAMPLES`."""
    kept, taken = samples, None
    if len(samples) > MAX_SAMPLES:
        step = -(-len(samples) // MAX_SAMPLES)
        kept, taken = samples[::step], len(samples)
    return SiteResources(
        interval_s=interval,
        samples=kept,
        by_phase=by_phase(samples),
        misses=misses,
        skipped=skipped,
        controller=controller,
        notes=list(notes),
        downsampled_from=taken,
    )


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    #: the polyline's `points`; runs broken where a value is missing become separate lines
    points: list[str]


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Chart:
    site: str
    width: int
    height: int
    left: int
    plot_right: int
    top: int
    plot_bottom: int
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    caption: str
    notes: list[str]


def _polylines(xy: Sequence[tuple[float, float | None]]) -> list[str]:
    """SVG `points` strings, one per stretch without a gap (one point: drawn as a dot)."""
    runs: list[list[str]] = [[]]
    for x, y in xy:
        if y is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(f"{x:.1f},{y:.1f}")
    return [" ".join(run) for run in runs if run]


def _caption(res: SiteResources) -> str:
    if not res.samples:
        return "no sample came back from this host"
    known = [s for s in res.samples if s.cpu_pct is not None]
    peak_cpu = max((s.cpu_pct or 0.0 for s in known), default=0.0)
    total = res.samples[-1].mem_total_mib if res.samples else 0.0
    peak_mem = max((s.mem_used_mib for s in res.samples), default=0.0)
    rss = [s.controller_rss_mib for s in res.samples if s.controller_rss_mib is not None]
    text = (
        f"{len(res.samples)} samples every {res.interval_s:g} s; peak CPU {peak_cpu:.0f} %, "
        f"memory {peak_mem:.0f} of {total:.0f} MiB"
    )
    if rss:
        text += f"; controller ({res.controller}) up to {max(rss):.0f} MiB"
    return text


def chart(site: str, res: SiteResources, span: float, x_ticks: Sequence[float]) -> Chart:
    """One site's chart: host CPU, the controller's CPU and memory in use, all in percent."""
    plot_right, plot_bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    span = span or 1.0

    def x(t: float) -> float:
        return LEFT + (plot_right - LEFT) * min(max(t, 0.0), span) / span

    def y(pct: float | None) -> float | None:
        if pct is None:
            return None
        return plot_bottom - (plot_bottom - TOP) * min(max(pct, 0.0), 100.0) / 100.0

    def mem(s: ResourceSample) -> float | None:
        return 100.0 * s.mem_used_mib / s.mem_total_mib if s.mem_total_mib else None

    series = (
        ("host CPU %", "#0072B2", lambda s: s.cpu_pct),
        ("controller CPU %", "#D55E00", lambda s: s.controller_cpu_pct),
        ("memory used %", "#009E73", mem),
    )
    lines = [
        Line(label, colour, _polylines([(x(s.t), y(value(s))) for s in res.samples]))
        for label, colour, value in series
    ]
    return Chart(
        site=site,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        plot_right=plot_right,
        top=TOP,
        plot_bottom=plot_bottom,
        lines=lines,
        x_ticks=[Tick(x(t), f"{t:g}") for t in x_ticks],
        y_ticks=[Tick(y(p) or 0.0, f"{p} %") for p in (0, 50, 100)],
        caption=_caption(res),
        notes=res.notes,
    )
