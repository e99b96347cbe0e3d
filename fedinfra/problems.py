"""A pydantic validation report as the one line a user reads.

Every input fedstack validates (the stack config, the federation spec, the inventory, the
workflow file, the checkpoint) turns its first error into one line that names where the
problem is and what is wrong, never the value (it may be a secret). Where the line points is the
caller's business: each input has its own way of naming a place (a site by name, a config key
in camelCase, a file and a TOML key), so the caller passes `where`; everything else is here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

Loc = tuple[int | str, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """The first error of a report: where (pydantic's loc), what, its kind, how many more."""

    loc: Loc
    message: str
    kind: str
    more: int


def first_problem(exc: ValidationError) -> Problem:
    """The first error, its message without pydantic's "Value error, " prefix."""
    errors = exc.errors()
    first = errors[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    return Problem(tuple(first["loc"]), message, str(first["type"]), len(errors) - 1)


def more_suffix(more: int, noun: str = "") -> str:
    """` (and 2 more problems)` or ` (and 2 more)`; empty when there is none."""
    if more <= 0:
        return ""
    word = f" {noun}{'s' if more > 1 else ''}" if noun else ""
    return f" (and {more} more{word})"


def one_line(
    exc: ValidationError,
    where: Callable[[Problem], str],
    *,
    noun: str = "",
    count_more: bool = True,
) -> str:
    """`<where>: <what>`, with how many more problems there are when `count_more`."""
    problem = first_problem(exc)
    place = where(problem)
    line = f"{place}: {problem.message}" if place else problem.message
    return line + (more_suffix(problem.more, noun) if count_more else "")
