"""What every command module of `python -m fcapi` shares: the context a command runs in.

A command is an async function of a `Ctx`; a module registers its commands with the parser
through an `AddCommand`, so that adding a command group is adding one module.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Awaitable, Callable
from typing import TextIO
from urllib.parse import urlsplit

from pydantic import SecretStr

from fcapi.cli.output import PROG, Out
from fcapi.controller import ControllerClient
from fcapi.credentials import load_passwords, password_for
from fcapi.errors import ExitCode, FcError
from fcapi.models import Project
from fcapi.website import WebsiteClient

__all__ = [
    "PROG",
    "AddCommand",
    "Command",
    "Ctx",
    "UsageError",
    "count",
    "email",
    "positive_float",
    "positive_int",
    "project_arg",
    "slug",
    "url",
]

#: RFC 5321's limit on an address; longer is not an e-mail (and not worth a request)
MAX_EMAIL = 254
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,252}")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")


def positive_float(text: str) -> float:
    """A finite number above zero: a rate of 0 or nan would turn the limit off or stall."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text[:40]!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None


def positive_int(text: str) -> int:
    value = _int(text)
    if not 0 < value < 2**63:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, got {text[:40]!r}")
    return value


def count(text: str) -> int:
    """How many of something to make: 0 to 1000 (more is a typo, and many requests)."""
    value = _int(text)
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1000, got {text[:40]!r}")
    return value


def email(text: str) -> str:
    if len(text) > MAX_EMAIL or not _EMAIL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not an e-mail address of at most {MAX_EMAIL} characters: {text[:40]!r}"
        )
    return text


def url(text: str) -> str:
    """An http(s) URL with a host: anything else fails deep inside the HTTP client."""
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a valid port in {text[:80]!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected http(s)://HOST[:PORT], got {text[:80]!r}")
    return text


def slug(text: str) -> str:
    if not _SLUG.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not an app slug (letters, digits, '.', '_', '-', '/'; at most 128): {text[:40]!r}"
        )
    return text


class UsageError(FcError):
    exit_code = ExitCode.USAGE


class Ctx:
    """A command's parsed arguments, its output and stdin, and its clients as it needs them."""

    def __init__(self, args: argparse.Namespace, out: Out, stdin: TextIO) -> None:
        self.args = args
        self.out = out
        self.stdin = stdin

    def user(self) -> str:
        user: str | None = self.args.user
        if not user:
            raise UsageError("no user: pass --user EMAIL or set FC_USER")
        return user

    def password(self, user: str) -> SecretStr:
        passwords = load_passwords(self.args.env_file, os.environ)
        return password_for(user, passwords, self.args.env_file)

    def website(self, user: str | None = None) -> WebsiteClient:
        user = user or self.user()
        return WebsiteClient(
            self.args.website_url,
            user,
            self.password(user),
            rate=self.args.rate,
            burst=self.args.burst,
        )

    def controller(self) -> ControllerClient:
        return ControllerClient(self.args.controller_url)

    def waiting(self, what: str) -> Callable[[Project, float], None]:
        def report(project: Project, elapsed: float) -> None:
            self.out.progress(
                f"waiting for {what}: project {project.id} is {project.status!r} "
                f"after {elapsed:.0f} s"
            )

        return report


Command = Callable[[Ctx], Awaitable[None]]
#: `add(name, help, command)`: a subcommand's parser, taking the common options, running `command`
AddCommand = Callable[[str, str, Command], argparse.ArgumentParser]


def project_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--project", type=positive_int, required=True, help="project id")
