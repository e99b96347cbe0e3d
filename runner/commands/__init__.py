"""The runner's subcommands beside a run: `python -m runner NAME ...`.

A bare `python -m runner --stack sim` runs a workflow (runner.cli); a first word that names an
entry here hands the rest of argv to that command instead. Entries are "module:function"
paths imported on first use, so a run never loads what only another command needs. A new
command is one module with `main(argv: list[str]) -> int` and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

#: command word -> "module:function" taking the argv after the word and returning an exit code
COMMANDS: dict[str, str] = {
    "sweep": "runner.commands.sweep:main",
    "runs": "runner.commands.runs:main",
    "show": "runner.commands.show:main",
    "check": "runner.commands.check:main",
}


def command(name: str) -> Callable[[list[str]], int] | None:
    """The `main` registered for `name`, imported now; None when `name` is no command."""
    target = COMMANDS.get(name)
    if target is None:
        return None
    module, _, function = target.partition(":")
    main: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
    return main
