"""report.html: one page a researcher opens to see how the run went.

It must open anywhere, offline, years later, and from an archive: so it is a single file with
inline CSS and inline SVG, no script and nothing fetched from the network. It is a pure
function of the metrics (and optionally the manifest), so it is tested without a run. The page
is a jinja2 template with autoescape on, so every value from outside (error messages, paths,
endpoint names) is escaped without anyone remembering to; the timeline's geometry is computed
in Python (`runner.outputs.timeline`) and the template only draws it.
"""

from __future__ import annotations

from functools import cache
from html import escape
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from runner.outputs.manifest import MANIFEST_FILE, Manifest
from runner.outputs.metrics import Metrics
from runner.outputs.resources import Chart, chart
from runner.outputs.results import Results
from runner.outputs.timeline import layout, tick_step


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(value, 60)
    return f"{int(minutes)} min {secs:.0f} s"


def size(value: int) -> str:
    """Bytes in the largest unit that keeps the number readable, up to GiB."""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"


def href(path: str) -> str:
    """A relative link to a file beside the report; never an absolute or external address."""
    return quote(path.lstrip("/"), safe="/._-")


def _escape(value: object) -> Markup:
    """Autoescape's last step, spelled as `html.escape` spells it (`&quot;`, not `&#34;`).

    Markup (a macro's output, an included template) passes unchanged; anything else is escaped.
    """
    if isinstance(value, Markup):
        return value
    return Markup(escape(str(value), quote=True))  # noqa: S704 escaped right here


@cache
def environment() -> Environment:
    """The templates shipped with the package (`runner/outputs/templates`), autoescaped."""
    env = Environment(
        loader=PackageLoader("runner.outputs", "templates"),
        autoescape=True,
        finalize=_escape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(seconds=seconds, size=size, href=href)
    return env


def timeline_svg(metrics: Metrics) -> str:
    """A Gantt chart: sites as rows, phases as coloured bars, an axis in seconds."""
    return environment().get_template("timeline.svg.j2").render(t=layout(metrics))


def resource_charts(metrics: Metrics) -> list[Chart]:
    """A chart per sampled site, on the timeline's time axis so the two line up."""
    sampled = [(s.name, s.resources) for s in metrics.sites if s.resources is not None]
    last = [r.samples[-1].t for _, r in sampled if r.samples]
    span = max([metrics.wall_clock_seconds, *last]) or 1.0
    step = tick_step(span)
    ticks = [k * step for k in range(int(span / step + 1e-9) + 1)]
    return [chart(name, res, span, ticks) for name, res in sampled]


def render_report(
    metrics: Metrics, manifest: Manifest | None = None, results: Results | None = None
) -> str:
    """The whole page as a string; write it with `fcapi.files.write_atomic`.

    `results`: the sites' answers (runner.outputs.results), shown first when given.
    """
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            metrics=metrics,
            manifest=manifest,
            manifest_file=MANIFEST_FILE,
            t=layout(metrics),
            results=results,
            charts=resource_charts(metrics),
        )
    )
