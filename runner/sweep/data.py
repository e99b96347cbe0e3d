"""A cell's input files: the study's table (or the demo's values) as CSV shares, its config.

A new run writes them afresh (a failed cell is retried with the study's data as it is now); a
resumed run keeps them, so it finds byte for byte the files its checkpoint knows.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fcapi.files import write_atomic
from runner.demo_data import MEAN_CONFIG_YML, site_values
from runner.sweep.cells import Cell, Rows, cell_shares
from runner.sweep.study import Study, StudyError

#: the config.yml of the demo's own apps, when the study names none
APP_CONFIGS = {
    "mean-app": MEAN_CONFIG_YML,
    "linear-regression": (
        "linear_regression:\n  input_name: data.csv\n  target: y\n  output_name: coefficients.csv\n"
    ),
}
DATA_NAME = "data.csv"
CONFIG_NAME = "config.yml"


def read_table(study: Study) -> tuple[list[str] | None, Rows]:
    """The study's table: header (if it has one) and rows; the demo's values without one."""
    if study.table is None or study.spec.data is None:
        return None, [[str(v) for v in site_values(i)] for i in range(max(study.spec.sites))]
    try:
        with study.table.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StudyError(
            f"{study.source}: key data.table: cannot read {study.table}: {exc}"
        ) from None
    header = rows.pop(0) if study.spec.data.header and rows else None
    if len(rows) < max(study.spec.sites):
        raise StudyError(
            f"{study.source}: key data.table: {len(rows)} rows cannot make "
            f"{max(study.spec.sites)} site shares"
        )
    return header, rows


def share_text(header: list[str] | None, rows: Rows, layout: str) -> str:
    """A share as the app reads it: rows under the header, or (values) one row of them all."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if layout == "values":
        writer.writerow([value for row in rows for value in row])
        return out.getvalue()
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write_cell_inputs(
    study: Study, cell: Cell, table: tuple[list[str] | None, Rows], folder: Path, *, keep: bool
) -> list[Path]:
    """The cell's shares (one per site, in site order) and config.yml; the shares' paths.

    `keep`: a resumed run's files stay as they are.
    """
    header, rows = table
    layout = study.spec.data.layout if study.spec.data is not None else "values"
    if study.spec.data is None:
        rows = rows[: cell.sites]
    paths = []
    for index, share in enumerate(cell_shares(cell, rows)):
        path = folder / "data" / f"share{index + 1}.csv"
        if not (keep and path.is_file()):
            write_atomic(path, share_text(header, share, layout))
        paths.append(path)
    config = config_text(study, cell)
    if config is not None and not (keep and (folder / CONFIG_NAME).is_file()):
        write_atomic(folder / CONFIG_NAME, config)
    return paths


def config_text(study: Study, cell: Cell) -> str | None:
    if cell.config is not None:
        return study.configs[cell.config].read_text(encoding="utf-8")
    return APP_CONFIGS.get(cell.app)
