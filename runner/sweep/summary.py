"""The study's summary: one row per cell (CSV and JSON), and each federated cell beside its twin.

Read by people (a spreadsheet), by `sweep.html` and by analysis code (analysis/'s Snakemake
study reads `summary.json`); written after every invocation from the cells' records alone.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from fcapi.files import write_atomic
from runner.sweep.cells import Cell
from runner.sweep.state import CellState

SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
COLUMNS = (
    "cell",
    "app",
    "config",
    "sites",
    "split",
    "repeat",
    "mode",
    "status",
    "run_id",
    "project_id",
    "seconds",
    "attempts",
    "sites_agree",
    "error",
)


def cell_row(cell: Cell, state: CellState) -> dict[str, Any]:
    row: dict[str, Any] = {
        "cell": cell.id,
        **cell.params(),
        "status": state.status,
        "run_id": state.run_id,
        "project_id": state.project_id,
        "seconds": state.seconds,
        "attempts": len(state.attempts),
        "sites_agree": state.sites_agree,
        "error": state.error,
    }
    row.update({f"result.{k}": v for k, v in state.results.items()})
    row.update({f"phase.{k}": v for k, v in state.phases.items()})
    return row


def comparisons(cells: list[Cell], states: dict[str, CellState]) -> list[dict[str, Any]]:
    """Each value of each completed federated cell against its completed twin's."""
    rows: list[dict[str, Any]] = []
    for cell in cells:
        if cell.twin_of is None:
            continue
        fed, central = states[cell.twin_of], states[cell.id]
        if fed.status != "completed" or central.status != "completed":
            continue
        for name, value in fed.results.items():
            other = central.results.get(name)
            if isinstance(value, float) and isinstance(other, float):
                rows.append(
                    {
                        "cell": cell.twin_of,
                        "name": name,
                        "federated": value,
                        "centralized": other,
                        "abs_difference": abs(value - other),
                    }
                )
    return rows


def summary(name: str, cells: list[Cell], states: dict[str, CellState]) -> dict[str, Any]:
    return {
        "study": name,
        "cells": [cell_row(c, states[c.id]) for c in cells],
        "comparisons": comparisons(cells, states),
    }


def write_summary(folder: Path, data: dict[str, Any]) -> None:
    write_atomic(folder / SUMMARY_JSON, json.dumps(data, indent=2, default=str) + "\n")
    columns = list(COLUMNS)
    for row in data["cells"]:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(data["cells"])
    write_atomic(folder / SUMMARY_CSV, out.getvalue())
