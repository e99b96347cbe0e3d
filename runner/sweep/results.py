"""A finished run's result values, read from the files its sites brought home.

Apps write their answers as small CSVs (the mean app one number, the regression a
`name,coefficient` table); the sweep compares cells by these numbers, so they are read here
once: the coordinator's are the cell's results, and every site is checked to hold the same.
"""

from __future__ import annotations

import csv
from pathlib import Path

from runner.outputs.metrics import METRICS_FILE, load_metrics

Value = float | str
#: a result file bigger than this is data, not an answer to compare
MAX_RESULT_BYTES = 1 << 20


def _number(text: str) -> Value:
    try:
        return float(text)
    except ValueError:
        return text


def file_values(path: Path) -> dict[str, Value]:
    """`{stem: v}` for a one-value file, `{stem.name: v}` for a two-column table."""
    if path.stat().st_size > MAX_RESULT_BYTES:
        return {}
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if len(rows) == 1 and len(rows[0]) == 1:
        return {path.stem: _number(rows[0][0])}
    if rows and all(len(r) == 2 for r in rows):
        return {f"{path.stem}.{name}": _number(value) for name, value in rows[1:]}
    return {}


def site_values(run_dir: Path, site: str) -> dict[str, Value]:
    """Every value of a site's result CSVs (the last run and step that wrote each file)."""
    found: dict[str, Value] = {}
    for path in sorted((run_dir / "sites" / site).glob("run*/step*/*.csv")):
        found.update(file_values(path))
    return found


def run_results(run_dir: Path, sites: list[str]) -> tuple[dict[str, Value], bool]:
    """The coordinator's (first site's) values, and whether every site holds the same."""
    values = [site_values(run_dir, site) for site in sites]
    return values[0], all(v == values[0] for v in values[1:])


def phase_seconds(run_dir: Path) -> dict[str, float]:
    """Seconds per run-level phase, as the run's metrics.json has them."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return {}
    return {
        p.name: round(p.duration_seconds, 3)
        for p in load_metrics(path).phases
        if p.duration_seconds is not None
    }
