"""`sweep.html`: the matrix of outcomes and the comparisons, one self-contained page.

Figures are inline SVG drawn from the summary, so the page needs nothing the runner does not
already install (the study extra's matplotlib is for analysis/, not for every sweep).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from fcapi.files import write_atomic

PAGE = "sweep.html"
BAR_HEIGHT = 18
CHART_WIDTH = 420


def matrix(cells: list[dict[str, Any]]) -> tuple[list[int], list[dict[str, Any]]]:
    """Rows (app, config, split, mode) by columns (site counts), each a list of outcomes."""
    counts = sorted({int(c["sites"]) for c in cells})
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for c in cells:
        key = (c["app"], c["config"], c["split"], c["mode"])
        row = rows.setdefault(key, {"key": key, "by_sites": {n: [] for n in counts}})
        row["by_sites"][int(c["sites"])].append(c)
    return counts, list(rows.values())


def bars(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One bar per cell with a duration, scaled to the longest."""
    timed = [c for c in cells if isinstance(c.get("seconds"), int | float)]
    longest = max((float(c["seconds"]) for c in timed), default=1.0) or 1.0
    return [
        {
            "label": c["cell"],
            "seconds": float(c["seconds"]),
            "y": i * BAR_HEIGHT,
            "width": CHART_WIDTH * float(c["seconds"]) / longest,
            "status": c["status"],
        }
        for i, c in enumerate(timed)
    ]


#: the differences' axis: 1e-18 (equal, to a float's precision) to 1e3
LOG_FLOOR, LOG_TOP = -18, 3


def difference_bars(comparisons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One bar per compared value, its length the difference's order of magnitude."""
    found = []
    for i, c in enumerate(comparisons):
        diff = float(c["abs_difference"])
        exponent = math.log10(diff) if diff > 0 else LOG_FLOOR
        share = (min(max(exponent, LOG_FLOOR), LOG_TOP) - LOG_FLOOR) / (LOG_TOP - LOG_FLOOR)
        found.append(
            {
                "label": f"{c['cell']} {c['name']}",
                "y": i * BAR_HEIGHT,
                "width": max(CHART_WIDTH * share, 1.0),
                "text": f"{diff:.2g}",
            }
        )
    return found


def write_page(folder: Path, data: dict[str, Any]) -> Path:
    env = Environment(
        loader=PackageLoader("runner.sweep", "templates"),
        autoescape=select_autoescape(default=True),
    )
    counts, rows = matrix(data["cells"])
    chart = bars(data["cells"])
    html = env.get_template("sweep.html.j2").render(
        study=data["study"],
        counts=counts,
        rows=rows,
        comparisons=data["comparisons"],
        bars=chart,
        differences=difference_bars(data["comparisons"]),
        bar_height=BAR_HEIGHT,
        chart_width=CHART_WIDTH,
        chart_height=BAR_HEIGHT * max(len(chart), 1),
    )
    path = folder / PAGE
    write_atomic(path, html)
    return path
