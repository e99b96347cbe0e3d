"""One error root: every runner error is a RunnerError, and the CLI exits with its kind's code."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main
from runner.collect.download import NoResults
from runner.collect.unpack import UnsafeArchive
from runner.engine.checkpoint import CheckpointError
from runner.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_SITES_FAILED,
    BadInput,
    RunFailed,
    RunInterrupted,
    RunnerError,
)
from runner.plan.credentials import MissingPasswords
from runner.plan.inventory_source import InventorySourceError
from runner.plan.workflow import WorkflowError
from runner.sites.base import SiteError


def test_input_errors_are_bad_input() -> None:
    for kind in (WorkflowError, InventorySourceError, MissingPasswords, CheckpointError):
        assert issubclass(kind, BadInput)
        assert kind.exit_code == EXIT_BAD_INPUT == 2


def test_run_errors_say_the_run_failed() -> None:
    for kind in (RunFailed, SiteError, NoResults, UnsafeArchive):
        assert issubclass(kind, RunnerError)
        assert kind.exit_code == EXIT_SITES_FAILED == 11
    assert RunInterrupted("r", Path("d")).exit_code == EXIT_INTERRUPTED == 130


def test_the_cli_prints_one_line_and_the_kind_s_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--inventory", str(tmp_path / "absent.json"), "--workflow", "w.toml"])
    assert code == EXIT_BAD_INPUT
    assert (
        capsys.readouterr().err == f"runner: {tmp_path / 'absent.json'}: inventory file not found\n"
    )
