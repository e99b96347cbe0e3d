"""A whole sweep: the cells still to run, at most `parallel` at once, then the summary and page.

When every cell is finished nothing is started at all (no website, no sites), so a second
invocation of a finished study only rewrites its summary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunInterrupted
from runner.outputs.writers.mlflow_tracking import Tracking
from runner.sweep.cells import Cell, expand
from runner.sweep.data import read_table
from runner.sweep.locks import SitePool
from runner.sweep.page import write_page
from runner.sweep.runcell import CellContext, cell_folder, run_cell
from runner.sweep.state import CellState, load_cell
from runner.sweep.study import Study
from runner.sweep.summary import summary, write_summary
from runner.sweep.targets import open_target


@dataclass
class SweepResult:
    cells: list[Cell]
    states: dict[str, CellState]
    skipped: list[str]
    page: Path

    @property
    def ok(self) -> bool:
        return all(s.status == "completed" for s in self.states.values())


class SweepInterrupted(RunInterrupted):
    """Ctrl-C: every running cell saved its run; the same command resumes them."""


def pool_size(study: Study, cells: list[Cell]) -> int:
    """Sites for `parallel` of the largest cells at once (the demo's federation size)."""
    return study.spec.parallel * max(c.run_sites for c in cells)


async def sweep(
    study: Study, echo: Callable[[str], None], tracking: Tracking | None = None
) -> SweepResult:
    """Run every cell not finished before; each cell's run recorded with `tracking` if any."""
    cells = expand(study.spec)
    states = {c.id: load_cell(cell_folder(study, c), c) for c in cells}
    todo = [c for c in cells if states[c.id].status != "completed"]
    skipped = [c.id for c in cells if c not in todo]
    for cell_id in skipped:
        echo(f"cell {cell_id}: finished before, skipped")
    if todo:
        states.update(await run_cells(study, todo, pool_size(study, cells), echo, tracking))
    data = summary(study.name, cells, states)
    await asyncio.to_thread(write_summary, study.folder, data)
    page = await asyncio.to_thread(write_page, study.folder, data)
    return SweepResult(cells, states, skipped, page)


async def run_cells(
    study: Study,
    todo: list[Cell],
    size: int,
    echo: Callable[[str], None],
    tracking: Tracking | None,
) -> dict[str, CellState]:
    table = await asyncio.to_thread(read_table, study)
    done: dict[str, CellState] = {}
    async with open_target(study, size) as target:
        pool = SitePool([s.name for s in target.inventory.sites])
        ctx = CellContext(study, table, target, pool, tracking)
        limit = asyncio.Semaphore(study.spec.parallel)

        async def one(cell: Cell) -> None:
            async with limit:
                state = await run_cell(ctx, cell)
            done[cell.id] = state
            took = f", {state.seconds:.1f} s" if state.seconds is not None else ""
            why = f": {state.error}" if state.error else ""
            echo(f"cell {cell.id}: {state.status} (run {state.run_id}{took}){why}")

        try:
            async with asyncio.TaskGroup() as group:
                for cell in todo:
                    group.create_task(one(cell))
        except* RunInterrupted as stop:
            await asyncio.to_thread(target.interrupted)
            first = stop.exceptions[0]
            assert isinstance(first, RunInterrupted)
            raise SweepInterrupted(first.run_id, study.folder) from None
    return done
