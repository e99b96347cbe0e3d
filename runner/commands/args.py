"""What every subcommand does with its argv and its errors: one line and exit 2 for bad input.

argparse prints a usage block and exits itself; a subcommand's mistake is instead the one
line every other mistake of the runner is, and `main` returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from fcapi.errors import one_line
from runner.errors import BadInput, RunnerError


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    def error(message: str) -> None:
        raise BadInput(f"{message} (see {parser.prog} --help)")

    parser.error = error  # type: ignore[method-assign,assignment]
    return parser.parse_args(argv)


def run_command(body: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        return body(argv)
    except RunnerError as exc:
        print(f"runner: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
