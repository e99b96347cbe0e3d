"""report.html: one page a researcher opens to see how the run went.

It must open anywhere, offline, years later, and from an archive: so it is a single file with
inline CSS and inline SVG, no script and nothing fetched from the network. It is a pure
function of the metrics (and optionally the manifest), so it is tested without a run, and every
value from outside (error messages, paths, endpoint names) is escaped.
"""

from __future__ import annotations

import math
from html import escape
from urllib.parse import quote

from runner.outputs.manifest import Manifest
from runner.outputs.metrics import Metrics, PhaseTiming, phase_rank

#: a colour per phase, colour-blind friendly (Okabe-Ito and neighbours), in run order
_PALETTE = (
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
_RUN_ROW = "(run)"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:.25em .7em;text-align:left;
border-bottom:1px solid #eee;vertical-align:top}th{background:#f6f6f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.05em .6em;border-radius:.8em;font-weight:600;color:#fff}
.ok,.completed{background:#1a7f37}.failed{background:#cf222e}
.incomplete,.interrupted{background:#9a6700}
code{font-size:.92em}.muted{color:#666}
dl{display:grid;grid-template-columns:max-content auto;gap:.15em 1em}dt{font-weight:600}
svg text{font:12px system-ui,sans-serif}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(value, 60)
    return f"{int(minutes)} min {secs:.0f} s"


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"


def _link(path: str) -> str:
    """A relative link to a file beside the report; never an absolute or external address."""
    href = quote(path.lstrip("/"), safe="/._-")
    return f'<a href="{_e(href)}"><code>{_e(path)}</code></a>'


def _badge(status: str) -> str:
    return f'<span class="badge {_e(status)}">{_e(status)}</span>'


def phase_colours(metrics: Metrics) -> dict[str, str]:
    """A stable colour per phase name: known phases in run order, others after them."""
    names = [p.name for p in metrics.phases] + [p.name for s in metrics.sites for p in s.phases]
    ordered = sorted(dict.fromkeys(names), key=phase_rank)
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(ordered)}


def _tick_step(span: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span / step <= 10:
            return float(step)
    return float(math.ceil(span / 10 / 3600) * 3600)


def _bars(phases: list[PhaseTiming], end: float) -> list[tuple[str, float, float, str]]:
    """(name, start, stop, state) in seconds from the run's start, unfinished ones to `end`."""
    bars = []
    for p in phases:
        if p.start_offset_seconds is None:
            continue
        start = p.start_offset_seconds
        stop = start + p.duration_seconds if p.duration_seconds is not None else end
        bars.append((p.name, start, max(stop, start), p.state))
    return bars


def _legend_layout(
    colours: dict[str, str], left: float, right: float
) -> dict[str, tuple[str, float, int]]:
    """Where each legend entry goes: (colour, x, row), wrapping before the right edge."""
    out: dict[str, tuple[str, float, int]] = {}
    x, row = left, 0
    for name, colour in colours.items():
        width = 28 + 7.5 * len(name)
        if x + width > right and x > left:
            x, row = left, row + 1
        out[name] = (colour, x, row)
        x += width
    return out


def timeline_svg(metrics: Metrics) -> str:
    """A Gantt chart: sites as rows, phases as coloured bars, an axis in seconds."""
    rows: list[tuple[str, list[tuple[str, float, float, str]]]] = []
    end = max(metrics.wall_clock_seconds, 0.0)
    site_phase_names = {p.name for s in metrics.sites for p in s.phases}
    run_level = [p for p in metrics.phases if p.name not in site_phase_names]
    if run_level:
        rows.append((_RUN_ROW, _bars(run_level, end)))
    for site in metrics.sites:
        rows.append((site.name, _bars(site.phases, end)))
    span = max([end, *(b[2] for _, bars in rows for b in bars)], default=0.0) or 1.0
    colours = phase_colours(metrics)
    left, right, top, row_h, bar_h = 120, 20, 10, 26, 16
    width = 960
    plot_w = width - left - right
    axis_y = top + row_h * len(rows) + 4
    legend = _legend_layout(colours, left, width - right)
    legend_y = axis_y + 56
    height = legend_y + 20 * max((row for _, _, row in legend.values()), default=0) + 12

    def x(seconds: float) -> float:
        return left + plot_w * seconds / span

    parts = [
        f'<svg role="img" aria-label="timeline of phases per site" width="100%" '
        f'style="max-width:{width}px;height:auto" viewBox="0 0 {width} {height}">'
    ]
    for i, (label, bars) in enumerate(rows):
        y = top + i * row_h
        if i % 2 == 0:
            parts.append(
                f'<rect x="0" y="{y}" width="{width}" height="{row_h}" fill="#f7f7f7"></rect>'
            )
        parts.append(
            f'<text x="{left - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">{_e(label)}</text>'
        )
        for name, start, stop, state in bars:
            w = max(x(stop) - x(start), 1.5)
            stroke = ' stroke="#cf222e" stroke-width="2"' if state == "failed" else ""
            opacity = "0.45" if state in ("running", "pending") else "1"
            parts.append(
                f'<rect class="bar" data-site="{_e(label)}" data-phase="{_e(name)}" '
                f'x="{x(start):.1f}" y="{y + (row_h - bar_h) / 2:.1f}" width="{w:.1f}" '
                f'height="{bar_h}" rx="2" fill="{colours.get(name, "#999")}" '
                f'fill-opacity="{opacity}"{stroke}>'
                f"<title>{_e(label)} {_e(name)} ({_e(state)}): {start:.2f} s to {stop:.2f} s"
                "</title></rect>"
            )
    step = _tick_step(span)
    parts.append(
        f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#444"></line>'
    )
    ticks = int(span / step + 1e-9)
    for k in range(ticks + 1):
        t = k * step
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{axis_y}" x2="{x(t):.1f}" y2="{axis_y + 5}" '
            'stroke="#444"></line>'
            f'<text x="{x(t):.1f}" y="{axis_y + 18}" text-anchor="middle">{t:g}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w}" y="{axis_y + 32}" text-anchor="end" fill="#666">'
        "seconds since the run started</text>"
    )
    for name, (colour, lx, row) in legend.items():
        ly = legend_y + 20 * row
        parts.append(
            f'<rect x="{lx:.0f}" y="{ly - 10}" width="12" height="12" fill="{colour}"></rect>'
            f'<text x="{lx + 16:.0f}" y="{ly}">{_e(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _sites_table(metrics: Metrics) -> str:
    rows = []
    for s in metrics.sites:
        what = _e(s.error) if s.error else ('<span class="muted">-</span>')
        total = sum(p.duration_seconds or 0.0 for p in s.phases)
        rows.append(
            f"<tr><td>{_e(s.name)}</td><td>{_e(s.role)}</td><td>{_e(s.fc_user)}</td>"
            f"<td>{_badge(s.status)}</td><td>{what}</td>"
            f'<td class="num">{s.files_uploaded}</td>'
            f'<td class="num">{_bytes(s.bytes_uploaded + s.bytes_uploaded_on_host)}</td>'
            f'<td class="num">{_bytes(s.bytes_downloaded)}</td>'
            f'<td class="num">{_seconds(total)}</td></tr>'
        )
    return (
        "<table><tr><th>site</th><th>role</th><th>FeatureCloud user</th><th>outcome</th>"
        "<th>what failed</th><th>files up</th><th>bytes up</th><th>bytes down</th>"
        "<th>time in phases</th></tr>" + "".join(rows) + "</table>"
    )


def _phases_table(metrics: Metrics) -> str:
    rows = "".join(
        f"<tr><td>{_e(p.name)}</td><td>{_badge(p.state) if p.state == 'failed' else _e(p.state)}"
        f'</td><td class="num">{_seconds(p.start_offset_seconds)}</td>'
        f'<td class="num">{_seconds(p.duration_seconds)}</td></tr>'
        for p in metrics.phases
    )
    return (
        "<table><tr><th>phase</th><th>state</th><th>started at</th><th>took</th></tr>"
        + rows
        + "</table>"
    )


def _files_list(metrics: Metrics) -> str:
    parts = []
    for s in metrics.sites:
        items = []
        for archive in s.results:
            inner = s.result_files.get(archive, [])
            unpacked = "".join(f"<li>{_link(f)}</li>" for f in inner)
            items.append(
                f"<li>result zip: {_link(archive)}"
                + (f"<ul>{unpacked}</ul>" if inner else "")
                + "</li>"
            )
        items += [f"<li>log: {_link(p)}</li>" for p in s.logs]
        body = "".join(items) or '<li class="muted">nothing collected</li>'
        parts.append(f"<h3>{_e(s.name)}</h3><ul>{body}</ul>")
    return "".join(parts)


def _requests(metrics: Metrics) -> str:
    r = metrics.requests
    endpoints = "".join(
        f'<tr><td><code>{_e(k)}</code></td><td class="num">{v}</td></tr>'
        for k, v in r.by_endpoint.items()
    )
    users = "".join(
        f'<tr><td>{_e(u)}</td><td class="num">{n}</td>'
        f'<td class="num">{r.max_rate_per_user.get(u, 0.0):g}</td></tr>'
        for u, n in r.by_user.items()
    )
    return (
        f"<p>{r.total} website requests in total; highest rate of any user "
        f"{r.max_rate:g} per second (over any {r.rate_window_seconds:g} s window).</p>"
        "<table><tr><th>endpoint</th><th>requests</th></tr>" + endpoints + "</table>"
        "<table><tr><th>user</th><th>requests</th><th>highest rate /s</th></tr>"
        + users
        + "</table>"
    )


def _manifest(manifest: Manifest) -> str:
    rows = "".join(
        f'<tr><td>{_link(f.path)}</td><td class="num">{_bytes(f.size)}</td>'
        f"<td><code>{_e(f.sha256[:16])}…</code></td></tr>"
        for f in manifest.files
    )
    return (
        f"<p>{len(manifest.files)} files, {_bytes(manifest.total_bytes)}; full sha256 sums in "
        f"{_link('manifest.json')}.</p>"
        "<table><tr><th>file</th><th>size</th><th>sha256</th></tr>" + rows + "</table>"
    )


def render_report(metrics: Metrics, manifest: Manifest | None = None) -> str:
    """The whole page as a string; write it with `fcapi.files.write_atomic`."""
    m = metrics
    failed = [s.name for s in m.sites if s.status == "failed"]
    summary = f"{len(m.sites) - len(failed)} of {len(m.sites)} sites ok" + (
        f"; failed: {', '.join(failed)}" if failed else ""
    )
    facts = [
        ("status", _badge(m.status)),
        ("sites", _e(summary)),
        ("app", _e(m.app or "(existing project)")),
        ("project id", _e(m.project_id if m.project_id is not None else "-")),
        ("stack", _e(m.stack)),
        ("coordinator", _e(m.coordinator)),
        ("started", _e(m.started_at.isoformat(timespec="seconds"))),
        ("finished", _e(m.finished_at.isoformat(timespec="seconds"))),
        ("duration", _e(_seconds(m.wall_clock_seconds))),
        ("website requests", _e(m.requests.total)),
        (
            "bytes moved",
            _e(
                f"{_bytes(m.bytes_moved.uploaded_from_runner)} up from here, "
                f"{_bytes(m.bytes_moved.uploaded_on_hosts)} up on the hosts, "
                f"{_bytes(m.bytes_moved.downloaded)} down"
            ),
        ),
        ("workflow", f"<code>{_e(m.config_path)}</code>"),
    ]
    if m.log_path:
        facts.append(("runner log", _link(m.log_path)))
    if m.error:
        facts.append(("error", _e(m.error)))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    sections = [
        f"<h1>fedstack run {_e(m.run_id)}</h1><dl>{dl}</dl>",
        "<h2>Outcome per site</h2>" + _sites_table(m),
        "<h2>Timeline</h2>" + timeline_svg(m) + _phases_table(m),
        "<h2>Results and logs</h2>" + _files_list(m),
        "<h2>Website requests</h2>" + _requests(m),
    ]
    if manifest is not None:
        sections.append("<h2>Files of this run</h2>" + _manifest(manifest))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fedstack run {_e(m.run_id)}: {_e(m.status)}</title>"
        f"<style>{_CSS}</style></head><body>" + "".join(sections) + "</body></html>\n"
    )
