"""Where every box of the report's timeline goes: sites as rows, phases as bars, an axis.

Pure arithmetic on the metrics, so the chart is tested without a browser; the markup that draws
these boxes is the template's (`templates/timeline.svg.j2`), which only formats the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from runner.outputs.metrics import Metrics, PhaseTiming, phase_rank

#: a colour per phase, colour-blind friendly (Okabe-Ito and neighbours), in run order
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#56B4E9",
    "#CC79A7",
    "#D55E00",
    "#F0E442",
    "#999999",
    "#7F3C8D",
    "#8C564B",
    "#333333",
    "#17BECF",
    "#BCBD22",
    "#E7298A",
)
RUN_ROW = "(run)"
#: the chart's frame, in SVG user units
WIDTH, LEFT, RIGHT, TOP, ROW_HEIGHT, BAR_HEIGHT = 960, 120, 20, 10, 26, 16
PLOT_WIDTH = WIDTH - LEFT - RIGHT


@dataclass(frozen=True)
class Span:
    """A phase in seconds from the run's start; an unfinished one runs to the run's end."""

    phase: str
    start: float
    stop: float
    state: str


@dataclass(frozen=True)
class Bar:
    span: Span
    x: float
    y: float
    width: float
    colour: str
    #: unfinished phases are drawn faint, failed ones outlined
    opacity: str
    failed: bool


@dataclass(frozen=True)
class Row:
    label: str
    y: int
    label_y: float
    #: every other row gets a grey band, to guide the eye along it
    shaded: bool
    bars: list[Bar]


@dataclass(frozen=True)
class Tick:
    x: float
    seconds: float


@dataclass(frozen=True)
class LegendEntry:
    phase: str
    colour: str
    x: float
    y: int


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    left: int
    plot_right: int
    row_height: int
    bar_height: int
    axis_y: int
    rows: list[Row]
    ticks: list[Tick]
    legend: list[LegendEntry]


@dataclass(frozen=True)
class _Scale:
    """Seconds to x: the plot spans `span` seconds."""

    span: float

    def x(self, seconds: float) -> float:
        return LEFT + PLOT_WIDTH * seconds / self.span


def phase_colours(metrics: Metrics) -> dict[str, str]:
    """A stable colour per phase name: known phases in run order, others after them."""
    names = [p.name for p in metrics.phases] + [p.name for s in metrics.sites for p in s.phases]
    ordered = sorted(dict.fromkeys(names), key=phase_rank)
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(ordered)}


def tick_step(span: float) -> float:
    """A round step that puts at most ten ticks on the axis."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span / step <= 10:
            return float(step)
    return float(math.ceil(span / 10 / 3600) * 3600)


def spans(phases: Sequence[PhaseTiming], end: float) -> list[Span]:
    """The phases that started, in seconds from the run's start, unfinished ones to `end`."""
    out = []
    for p in phases:
        if p.start_offset_seconds is None:
            continue
        start = p.start_offset_seconds
        stop = start + p.duration_seconds if p.duration_seconds is not None else end
        out.append(Span(p.name, start, max(stop, start), p.state))
    return out


def labelled_spans(metrics: Metrics) -> list[tuple[str, list[Span]]]:
    """The chart's rows: the run's own phases first (if any), then one row per site."""
    end = max(metrics.wall_clock_seconds, 0.0)
    site_phase_names = {p.name for s in metrics.sites for p in s.phases}
    run_level = [p for p in metrics.phases if p.name not in site_phase_names]
    rows = [(RUN_ROW, spans(run_level, end))] if run_level else []
    return rows + [(site.name, spans(site.phases, end)) for site in metrics.sites]


def _bar(span: Span, y: int, colour: str, scale: _Scale) -> Bar:
    return Bar(
        span=span,
        x=scale.x(span.start),
        y=y + (ROW_HEIGHT - BAR_HEIGHT) / 2,
        width=max(scale.x(span.stop) - scale.x(span.start), 1.5),
        colour=colour,
        opacity="0.45" if span.state in ("running", "pending") else "1",
        failed=span.state == "failed",
    )


def _rows(
    labelled: list[tuple[str, list[Span]]], colours: dict[str, str], scale: _Scale
) -> list[Row]:
    rows = []
    for i, (label, row_spans) in enumerate(labelled):
        y = TOP + i * ROW_HEIGHT
        bars = [_bar(s, y, colours.get(s.phase, "#999"), scale) for s in row_spans]
        rows.append(Row(label, y, y + ROW_HEIGHT / 2 + 4, i % 2 == 0, bars))
    return rows


def _legend(colours: dict[str, str], top: int) -> list[LegendEntry]:
    """One entry per phase, left to right, wrapping to a new line before the right edge."""
    out: list[LegendEntry] = []
    x, row = float(LEFT), 0
    for name, colour in colours.items():
        width = 28 + 7.5 * len(name)
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, row = float(LEFT), row + 1
        out.append(LegendEntry(name, colour, x, top + 20 * row))
        x += width
    return out


def layout(metrics: Metrics) -> Timeline:
    """The whole chart's geometry, sized to its rows and its legend."""
    labelled = labelled_spans(metrics)
    end = max(metrics.wall_clock_seconds, 0.0)
    span = max([end, *(s.stop for _, row in labelled for s in row)], default=0.0) or 1.0
    scale = _Scale(span)
    colours = phase_colours(metrics)
    axis_y = TOP + ROW_HEIGHT * len(labelled) + 4
    legend = _legend(colours, axis_y + 56)
    step = tick_step(span)
    ticks = [Tick(scale.x(k * step), k * step) for k in range(int(span / step + 1e-9) + 1)]
    return Timeline(
        width=WIDTH,
        height=max([axis_y + 56, *(e.y for e in legend)]) + 12,
        left=LEFT,
        plot_right=LEFT + PLOT_WIDTH,
        row_height=ROW_HEIGHT,
        bar_height=BAR_HEIGHT,
        axis_y=axis_y,
        rows=_rows(labelled, colours, scale),
        ticks=ticks,
        legend=legend,
    )
