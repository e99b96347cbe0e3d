"""`python -m fcapi`: fedflow's `fcauto` subcommands on fcapi's client.

fedflow users keep their habits (the same subcommands, `-u/-p/-t/-n/-d` flags, the `.env` of
`USER=PASSWORD` lines) and gain what fcauto lacked: one login per command, waits with a
deadline that say what they wait for, errors as one line on stderr with an exit code per
failure kind, `--json` for scripts. Passwords are never taken from argv: other users of the
machine can read it.

One module per command group (Flower's `flwr/cli` way): `project` (create ... reset), `apps`
(list-apps), `account` (signup), `site` (site-check, site-info, site-join: a host-held
site's own login and join); each registers its subcommands here through `build_parser`.
`base` holds the context a command runs in, `output` what it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from fcapi import DEFAULT_CONTROLLER_URL, DEFAULT_WEBSITE_URL, __version__
from fcapi.cli import account, apps, project, site
from fcapi.cli.base import (
    PROG,
    Command,
    Ctx,
    UsageError,
    email,
    positive_float,
    positive_int,
    url,
)
from fcapi.cli.output import Out
from fcapi.errors import ExitCode, FcError, NotFound, one_line

__all__ = ["PROG", "amain", "build_parser", "main", "parse_args"]

#: the command groups, in the order `--help` lists their subcommands
GROUPS = (project, apps, account, site)

#: options every subcommand takes, before or after the subcommand's name
_COMMON: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("--website-url",),
        {
            "type": url,
            "help": f"FeatureCloud website (env FCAPI_WEBSITE_URL; default {DEFAULT_WEBSITE_URL})",
        },
    ),
    (
        ("--controller-url",),
        {
            "type": url,
            "help": "this site's controller "
            f"(env FCAPI_CONTROLLER_URL; default {DEFAULT_CONTROLLER_URL})",
        },
    ),
    (("-u", "--user"), {"type": email, "help": "FeatureCloud user (e-mail); env FC_USER"}),
    (
        ("--env-file",),
        {"type": Path, "help": "file of USER=PASSWORD lines (default ./.env if present)"},
    ),
    (("--json",), {"action": "store_true", "help": "print one JSON document on stdout"}),
    (
        ("--rate",),
        {"type": positive_float, "help": "website requests per second per user (default 3)"},
    ),
    (("--burst",), {"type": positive_int, "help": "website request burst per user (default 3)"}),
]
_COMMON_DEFAULTS: dict[str, Any] = {
    "website_url": None,
    "controller_url": None,
    "user": None,
    "env_file": None,
    "json": False,
    "rate": 3.0,
    "burst": 3,
}


class _Parser(argparse.ArgumentParser):
    """argparse's mistakes as one line and the usage exit code, like every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _common_parser() -> _Parser:
    common = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    for flags, kwargs in _COMMON:
        common.add_argument(*flags, **kwargs)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_parser()
    parser = _Parser(
        prog=PROG,
        description="FeatureCloud.ai from the command line (fedflow's fcauto subcommands).",
        epilog="passwords: USER=PASSWORD lines in ./.env (or --env-file), or the environment; "
        "never on the command line. exit codes: "
        + ", ".join(f"{c.value} {c.name.lower().replace('_', ' ')}" for c in ExitCode),
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(
        dest="cmd", required=True, metavar="SUBCOMMAND", parser_class=_Parser
    )

    def add(name: str, help_: str, command: Command) -> argparse.ArgumentParser:
        subparser = sub.add_parser(name, help=help_, description=help_, parents=[common])
        subparser.set_defaults(handler=command)
        return subparser

    for group in GROUPS:
        group.register(add)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    for arg in argv:
        if arg.startswith("--password") and arg != "--password-stdin":
            raise UsageError(
                "passwords are never taken on the command line (other users can read it): "
                "put 'USER=PASSWORD' in the .env file, set it in the environment, or use "
                "--password-stdin"
            )
    args = build_parser().parse_args(list(argv))
    for name, default in _COMMON_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        args.website_url = args.website_url or url(
            os.environ.get("FCAPI_WEBSITE_URL", DEFAULT_WEBSITE_URL)
        )
        args.controller_url = args.controller_url or url(
            os.environ.get("FCAPI_CONTROLLER_URL", DEFAULT_CONTROLLER_URL)
        )
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"FCAPI_WEBSITE_URL or FCAPI_CONTROLLER_URL: {exc}") from None
    args.user = args.user or os.environ.get("FC_USER")
    return args


async def amain(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run one command; return its exit code. Usable inside a running event loop."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)

    def show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
        stderr.write(f"{PROG}: warning: {one_line(str(message))}\n")

    try:
        args = parse_args(argv)
    except UsageError as exc:
        stderr.write(f"{PROG}: error: {one_line(str(exc))}\n")
        return int(ExitCode.USAGE)
    except SystemExit as exc:  # argparse: --help, --version, bad usage
        code = exc.code if isinstance(exc.code, int) else int(ExitCode.USAGE)
        return code
    out = Out(args.json, stdout, stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        try:
            handler: Command = args.handler
            await handler(Ctx(args, out, stdin))
        except NotFound as exc:
            project = getattr(args, "project", None)
            about = f"project {project}: " if project and str(project) not in str(exc) else ""
            stderr.write(f"{PROG}: error: {about}{one_line(str(exc))}\n")
            return int(exc.exit_code)
        except FcError as exc:
            stderr.write(f"{PROG}: error: {one_line(str(exc))}\n")
            return int(exc.exit_code)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            stderr.write(f"{PROG}: error: {one_line(str(exc))}\n")
            return int(ExitCode.USAGE)
        except OSError as exc:
            stderr.write(f"{PROG}: error: {one_line(str(exc))}\n")
            return int(ExitCode.OTHER)
    return int(ExitCode.OK)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return asyncio.run(amain(argv))
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
