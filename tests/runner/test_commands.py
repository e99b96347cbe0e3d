"""`python -m runner WORD ...` hands the rest of argv to the command registered for WORD."""

from __future__ import annotations

import sys
import types

import pytest

from runner import cli, commands


def test_a_registered_word_runs_its_command_with_the_rest_of_argv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []
    module = types.ModuleType("fake_command")

    def main(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_command", module)
    monkeypatch.setitem(commands.COMMANDS, "fake", "fake_command:main")
    assert cli.main(["fake", "--json", "x"]) == 7
    assert seen == [["--json", "x"]]


def test_any_other_first_word_is_a_run_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["nonsense"]) == 2
    assert "unrecognized arguments: nonsense" in capsys.readouterr().err
