"""The analysis result as each site's output files say it, and whether the sites agree.

A federated run is right only if every site ends with the same answer, so the report, the
run list and the tracking record read the values from the files the sites' controllers
returned, not from anything the runner computed. Two shapes are values: a file whose last
line is one number (the mean app appends its mean) and a `name,number` table under a header
line (the regression's `coefficients.csv`). Anything else (a standardised data table, a
log) is a file, not a value. Only the last step of the newest run counts: in a workflow of
several apps, the earlier steps' outputs are the later steps' inputs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from runner.outputs.metrics import Metrics
from runner.plan.workflow import CONFIG_NAME

#: a result file larger than this is data, not an answer, and is not read
MAX_VALUE_FILE = 1 << 20
#: a table with more rows than this is data, not an answer
MAX_VALUES = 200
_ZIP = re.compile(r"/run(\d+)/results_step(\d+)\.zip$")


@dataclass(frozen=True)
class SiteResult:
    site: str
    #: the answer's files, relative to the run dir
    files: list[str]
    #: label (`output.csv`, `coefficients.csv: x1`) -> the value as the file writes it
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Results:
    sites: list[SiteResult]

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(k for s in self.sites for k in s.values))

    @property
    def agree(self) -> bool | None:
        """True when every site holds every value and all are equal; None: no values at all."""
        if not self.labels:
            return None
        first = self.sites[0].values
        return all(_same(s.values, first) for s in self.sites)

    def value(self, label: str) -> str | None:
        """The label's value at the first site that has it (the coordinator comes first)."""
        return next((s.values[label] for s in self.sites if label in s.values), None)


def _same(a: dict[str, str], b: dict[str, str]) -> bool:
    return a.keys() == b.keys() and all(float(a[k]) == float(b[k]) for k in a)


def number(text: str) -> float | None:
    """The text as a finite number, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def file_values(name: str, text: str) -> dict[str, str]:
    """The values a result file holds, by label; empty when it holds no answer."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return {}
    if len(lines) <= MAX_VALUES and number(lines[-1]) is not None:
        return {name: lines[-1]}
    rows = [line.split(",") for line in lines[1:]]
    if 0 < len(rows) <= MAX_VALUES and all(
        len(r) == 2 and number(r[1].strip()) is not None for r in rows
    ):
        return {f"{name}: {r[0].strip()}": r[1].strip() for r in rows}
    return {}


def _last_step(result_files: dict[str, list[str]]) -> list[str]:
    """The files of the newest run's last step: the workflow's final answer."""
    ranked = []
    for archive, files in result_files.items():
        found = _ZIP.search(archive)
        if found:
            ranked.append(((int(found[1]), int(found[2])), files))
    return max(ranked)[1] if ranked else []


def _read(run_dir: Path, rel: str) -> str | None:
    path = (run_dir / rel).resolve()
    if not path.is_relative_to(run_dir.resolve()) or not path.is_file():
        return None
    if path.stat().st_size > MAX_VALUE_FILE:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def read_results(run_dir: Path, metrics: Metrics) -> Results:
    """Each site's answer, in inventory order (the coordinator first)."""
    sites: list[SiteResult] = []
    for site in metrics.sites:
        files = _last_step(site.result_files)
        values: dict[str, str] = {}
        for rel in files:
            name = Path(rel).name
            text = None if name == CONFIG_NAME else _read(run_dir, rel)
            if text is not None:
                values.update(file_values(name, text))
        sites.append(SiteResult(site=site.name, files=files, values=values))
    return Results(sites=sites)


def headline(results: Results) -> str:
    """The answer in a few words, for a list of runs: `54.2 (3 sites agree)`."""
    labels = results.labels
    if not labels:
        return "-"
    shown = ", ".join(
        f"{label.split(': ', 1)[-1]}={results.value(label)}"
        if len(labels) > 1
        else str(results.value(label))
        for label in labels[:3]
    )
    more = f", +{len(labels) - 3} more" if len(labels) > 3 else ""
    n = len(results.sites)
    verdict = f"{n} sites agree" if results.agree else "sites DISAGREE"
    return f"{shown}{more} ({verdict})"
