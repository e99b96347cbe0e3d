"""What every command module of `python -m fcapi` shares: the context a command runs in.

A command is an async function of a `Ctx`; a module registers its commands with the parser
through an `AddCommand`, so that adding a command group is adding one module.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from typing import TextIO

from pydantic import SecretStr

from fcapi.cli.output import PROG, Out
from fcapi.controller import ControllerClient
from fcapi.credentials import load_passwords, password_for
from fcapi.errors import ExitCode, FcError
from fcapi.models import Project
from fcapi.website import WebsiteClient

__all__ = ["PROG", "AddCommand", "Command", "Ctx", "UsageError", "project_arg"]


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
    parser.add_argument("-p", "--project", type=int, required=True, help="project id")
