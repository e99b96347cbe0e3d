"""A pydantic validation report as the one line a user reads.

Every input fedstack validates (the stack config, the federation spec, the inventory, the
workflow file, the checkpoint) turns its first error into one line that names where the
problem is and what is wrong, never the value (it may be a secret). Where the line points is the
caller's business: each input has its own way of naming a place (a site by name, a config key
in camelCase, a file and a TOML key), so the caller passes `where`; everything else is here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

Loc = tuple[int | str, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """The first error of a report: where (pydantic's loc), what, its kind, how many more."""

    loc: Loc
    message: str
    kind: str
    more: int
    #: pydantic's context of the error (the bound of a `ge`, the `min_length`, ...)
    ctx: Mapping[str, Any] = field(default_factory=dict)


def first_problem(exc: ValidationError) -> Problem:
    """The first error, its message without pydantic's "Value error, " prefix."""
    errors = exc.errors()
    first = errors[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    ctx = dict(first.get("ctx") or {})
    return Problem(tuple(first["loc"]), message, str(first["type"]), len(errors) - 1, ctx)


#: pydantic's built-in kinds, phrased for someone editing a file ("must be >= 1024" rather
#: than "Input should be greater than or equal to 1024")
_PLAIN: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "greater_than_equal": lambda ctx: f"must be >= {ctx['ge']}",
    "less_than_equal": lambda ctx: f"must be <= {ctx['le']}",
    "missing": lambda ctx: "is required",
    "extra_forbidden": lambda ctx: "is not a known field",
    "int_parsing": lambda ctx: "must be a whole number",
    "int_type": lambda ctx: "must be a whole number",
    "int_from_float": lambda ctx: "must be a whole number",
    "bool_parsing": lambda ctx: "must be true or false",
    "bool_type": lambda ctx: "must be true or false",
    "string_type": lambda ctx: "must be a string",
    "model_type": lambda ctx: "must be a mapping of fields",
    "model_attributes_type": lambda ctx: "must be a mapping of fields",
    "dict_type": lambda ctx: "must be a mapping of fields",
    "list_type": lambda ctx: "must be a list",
}


def plain_message(problem: Problem) -> str:
    """The problem's message in plain words where fedstack has some, else pydantic's."""
    if problem.kind == "too_short" and problem.ctx.get("min_length") is not None:
        least = problem.ctx["min_length"]
        return f"must have at least {least} entr{'y' if least == 1 else 'ies'}"
    plain = _PLAIN.get(problem.kind)
    return plain(problem.ctx) if plain is not None else problem.message


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
    plain: bool = False,
) -> str:
    """`<where>: <what>`, with how many more problems there are when `count_more`; `plain`
    words pydantic's own kinds of error as `plain_message` does."""
    problem = first_problem(exc)
    place = where(problem)
    message = plain_message(problem) if plain else problem.message
    line = f"{place}: {message}" if place else message
    return line + (more_suffix(problem.more, noun) if count_more else "")
