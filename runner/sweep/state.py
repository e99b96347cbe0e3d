"""A cell's record (`cells/<id>/cell.json`): how it stands, which runs it made, its results.

Written atomically after every change, so a sweep killed at any moment leaves each cell either
as it was or as it became; the run folders under `cells/<id>/runs/` stay the truth about runs
(a run the record does not know of yet is found there and resumed or adopted).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fcapi.files import write_atomic
from fedinfra.problems import one_line
from runner.errors import BadInput
from runner.sweep.cells import Cell

CELL_FILE = "cell.json"
Status = Literal["pending", "running", "completed", "failed", "interrupted"]
Value = float | str


class CellAttempt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str | None
    outcome: Literal["completed", "failed", "interrupted"]
    code: int
    started_at: datetime
    finished_at: datetime
    error: str | None = None


class CellState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    params: dict[str, str | int | None]
    status: Status = "pending"
    #: the sites of the current run, the coordinator first (a resume needs the same ones)
    sites: list[str] = Field(default_factory=list)
    run_id: str | None = None
    project_id: int | None = None
    seconds: float | None = None
    error: str | None = None
    #: the run's results, by file and name, as the coordinator's result files hold them
    results: dict[str, Value] = Field(default_factory=dict)
    #: whether every site's result files held the same values
    sites_agree: bool | None = None
    #: seconds per run-level phase (metrics.json)
    phases: dict[str, float] = Field(default_factory=dict)
    attempts: list[CellAttempt] = Field(default_factory=list)

    def ended_runs(self) -> set[str]:
        """Runs whose end the record holds; an interrupted one is still to be resumed."""
        return {a.run_id for a in self.attempts if a.run_id and a.outcome != "interrupted"}


def now() -> datetime:
    return datetime.now(UTC)


def new_cell_state(cell: Cell) -> CellState:
    return CellState(id=cell.id, params=cell.params())


def cell_path(folder: Path) -> Path:
    return folder / CELL_FILE


def load_cell(folder: Path, cell: Cell) -> CellState:
    """The cell's record, or a pending one when it never ran."""
    path = cell_path(folder)
    if not path.is_file():
        return new_cell_state(cell)
    try:
        state = CellState.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise BadInput(
            one_line(exc, lambda p: f"{path}: damaged record", count_more=False)
        ) from None
    if state.params != cell.params():
        raise BadInput(f"{path}: the record is of another cell ({state.params})")
    return state


def save_cell(folder: Path, state: CellState) -> None:
    write_atomic(cell_path(folder), state.model_dump_json(indent=2) + "\n")
