"""A study's matrix as cells, and the data cut into site shares: pure functions of the spec.

Kept free of I/O so the matrix a study file means, and the share every site of a cell gets,
can be read (and tested) without running anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from runner.sweep.study import StudySpec

Mode = Literal["federated", "centralized"]
Rows = list[list[str]]
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Cell:
    """One run of the matrix; `sites` is the federated cell's site count (its data shares)."""

    id: str
    app: str
    config: int | None
    sites: int
    split: str
    repeat: int
    mode: Mode

    @property
    def run_sites(self) -> int:
        """How many sites the run takes: a centralized twin holds everything on one."""
        return 1 if self.mode == "centralized" else self.sites

    @property
    def twin_of(self) -> str | None:
        """The federated cell a centralized one is the twin of."""
        return self.id.removesuffix("-central") if self.mode == "centralized" else None

    def params(self) -> dict[str, str | int | None]:
        return {
            "app": self.app,
            "config": self.config,
            "sites": self.sites,
            "split": self.split,
            "repeat": self.repeat,
            "mode": self.mode,
        }


def cell_id(app: str, config: int | None, sites: int, split: str, repeat: int) -> str:
    """A folder name that says the parameters: `mean-app-n3-balanced-r1` (`-c2`: config 2)."""
    conf = f"-c{config + 1}" if config is not None else ""
    return f"{_UNSAFE.sub('_', app)}{conf}-n{sites}-{split}-r{repeat}"


def expand(spec: StudySpec) -> list[Cell]:
    """Every cell, in the order they run: each federated cell followed by its twin."""
    configs: list[int | None] = list(range(len(spec.configs))) or [None]
    cells: list[Cell] = []
    for app in spec.apps:
        for config in configs:
            for split in spec.splits:
                for sites in spec.sites:
                    for repeat in range(1, spec.repeats + 1):
                        base = cell_id(app, config, sites, split, repeat)
                        cells.append(Cell(base, app, config, sites, split, repeat, "federated"))
                        if spec.centralized:
                            twin = Cell(
                                f"{base}-central", app, config, sites, split, repeat, "centralized"
                            )
                            cells.append(twin)
    return cells


def share_sizes(total: int, count: int, split: str) -> list[int]:
    """Rows per share: equal (balanced) or growing 1 : 2 : ... : count (unbalanced).

    Largest remainders, so the sizes add up to `total`; every share gets a row at least.
    """
    if total < count:
        raise ValueError(f"{total} rows cannot make {count} shares")
    weights = [1] * count if split == "balanced" else list(range(1, count + 1))
    spare = total - count
    exact = [spare * w / sum(weights) for w in weights]
    sizes = [int(x) for x in exact]
    order = sorted(range(count), key=lambda i: (sizes[i] - exact[i], i))
    for i in order[: spare - sum(sizes)]:
        sizes[i] += 1
    return [s + 1 for s in sizes]


def split_rows(rows: Rows, count: int, split: str) -> list[Rows]:
    """The rows cut into `count` consecutive shares, in order (the same every time)."""
    shares: list[Rows] = []
    start = 0
    for size in share_sizes(len(rows), count, split):
        shares.append(rows[start : start + size])
        start += size
    return shares


def cell_shares(cell: Cell, rows: Rows) -> list[Rows]:
    """What each of the cell's sites holds: its share, or for a twin all shares pooled."""
    shares = split_rows(rows, cell.sites, cell.split)
    if cell.mode == "centralized":
        return [[row for share in shares for row in share]]
    return shares
