"""`python -m fcapi`: fedflow's `fcauto` subcommands on fcapi's client.

fedflow users keep their habits (the same subcommands, `-u/-p/-t/-n/-d` flags, the `.env` of
`USER=PASSWORD` lines) and gain what fcauto lacked: one login per command, waits with a
deadline that say what they wait for, errors as one line on stderr with an exit code per
failure kind, `--json` for scripts. Passwords are never taken from argv: other users of the
machine can read it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, SecretStr

from fcapi import DEFAULT_CONTROLLER_URL, DEFAULT_WEBSITE_URL, __version__
from fcapi.controller import ControllerClient
from fcapi.credentials import load_passwords, password_for
from fcapi.errors import Conflict, ExitCode, FcError, NotFound
from fcapi.models import Project, ProjectStatus
from fcapi.status import is_terminal
from fcapi.website import WebsiteClient

PROG = "fcapi"
SITE_INFO = "site_info.json"

#: options every subcommand takes, before or after the subcommand's name
_COMMON: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("--website-url",),
        {"help": f"FeatureCloud website (env FCAPI_WEBSITE_URL; default {DEFAULT_WEBSITE_URL})"},
    ),
    (
        ("--controller-url",),
        {
            "help": "this site's controller "
            f"(env FCAPI_CONTROLLER_URL; default {DEFAULT_CONTROLLER_URL})"
        },
    ),
    (("-u", "--user"), {"help": "FeatureCloud user (e-mail); env FC_USER"}),
    (
        ("--env-file",),
        {"type": Path, "help": "file of USER=PASSWORD lines (default ./.env if present)"},
    ),
    (("--json",), {"action": "store_true", "help": "print one JSON document on stdout"}),
    (("--rate",), {"type": float, "help": "website requests per second per user (default 3)"}),
    (("--burst",), {"type": int, "help": "website request burst per user (default 3)"}),
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


class UsageError(FcError):
    exit_code = ExitCode.USAGE


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    for flags, kwargs in _COMMON:
        common.add_argument(*flags, **kwargs)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_parser()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="FeatureCloud.ai from the command line (fedflow's fcauto subcommands).",
        epilog="passwords: USER=PASSWORD lines in ./.env (or --env-file), or the environment; "
        "never on the command line. exit codes: "
        + ", ".join(f"{c.value} {c.name.lower().replace('_', ' ')}" for c in ExitCode),
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="SUBCOMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, parents=[common])

    def project_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("-p", "--project", type=int, required=True, help="project id")

    create = add("create", "create a project with one app (as its coordinator) and tokens")
    create.add_argument("-t", "--tool", required=True, help="app slug, e.g. mean-app")
    create.add_argument("-n", "--num", type=int, default=0, help="participant tokens to create")
    create.add_argument("--name", help="project name (default: a random one)")
    create.add_argument("--description", default="", help="project description")

    join = add("join", "join a project with a participant token")
    join.add_argument("-t", "--token", help="participant token (or --token-stdin)")
    join.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    join.add_argument("-p", "--project", type=int, help="project id, to check membership")

    prep = add("prep", "set a project to 'prepare' (coordinator), which opens uploads")
    project_arg(prep)

    contribute = add("contribute", "upload data files to this site's controller and finalize")
    project_arg(contribute)
    contribute.add_argument("-d", "--data", nargs="+", type=Path, required=True, help="files")
    contribute.add_argument(
        "--data-dir",
        type=Path,
        help=f"controller's data dir on this machine: write {SITE_INFO} there first",
    )
    contribute.add_argument(
        "--no-finalize", action="store_true", help="upload only; do not finalize"
    )
    contribute.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for 'prepare' (600)"
    )

    monitor = add("monitor", "wait until a project finishes")
    project_arg(monitor)
    monitor.add_argument(
        "-t", "--timeout", type=float, default=3600.0, help="seconds to wait (3600)"
    )
    monitor.add_argument(
        "--stop-on-timeout", action="store_true", help="ask the site to shut the project down"
    )

    query = add("query", "print a project's status")
    project_arg(query)

    download = add("download", "download logs and results of a run from the controller")
    project_arg(download)
    download.add_argument("-o", "--out", type=Path, default=Path("."), help="directory")
    download.add_argument("--run", type=int, help="run number (default: the newest)")

    reset = add("reset", "bring a project back to 'ready' (stopping it if it runs)")
    project_arg(reset)
    reset.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (120)")

    add("list-apps", "list the apps on the site")

    signup = add("signup", "create an account and its site")
    signup.add_argument("--email", required=True)
    signup.add_argument("--first-name", default="")
    signup.add_argument("--last-name", default="")
    signup.add_argument("--site-name", help="name of the account's site (default: the e-mail)")
    signup.add_argument("--role", default="user", help="account role (default: user)")
    signup.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the new password from stdin (else from the environment or .env)",
    )
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
    args.website_url = args.website_url or os.environ.get("FCAPI_WEBSITE_URL", DEFAULT_WEBSITE_URL)
    args.controller_url = args.controller_url or os.environ.get(
        "FCAPI_CONTROLLER_URL", DEFAULT_CONTROLLER_URL
    )
    args.user = args.user or os.environ.get("FC_USER")
    return args


# --- output -------------------------------------------------------------------------------


class Out:
    """Results to stdout (text or one JSON document); progress and errors to stderr."""

    def __init__(self, as_json: bool, stdout: TextIO, stderr: TextIO) -> None:
        self.as_json = as_json
        self.stdout = stdout
        self.stderr = stderr

    def result(self, data: Any, lines: Sequence[str]) -> None:
        if self.as_json:
            self.stdout.write(json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")
        else:
            for line in lines:
                self.stdout.write(line + "\n")
        self.stdout.flush()

    def progress(self, message: str) -> None:
        self.stderr.write(f"{PROG}: {message}\n")
        self.stderr.flush()


def _jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, dict):
        return {k: _jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_jsonable(v) for v in data]
    if isinstance(data, Path):
        return str(data)
    return data


# --- commands ------------------------------------------------------------------------------


class Ctx:
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


async def cmd_create(ctx: Ctx) -> None:
    a = ctx.args
    async with ctx.website() as site:
        app = await site.app_by_slug(a.tool)
        added = await site.ensure_in_library(app.id)
        name = a.name or f"fedstack-{secrets.token_hex(4)}"
        project = await site.create_project(name, a.description)
        project = await site.set_workflow(
            project.id, [app.id], name=name, description=a.description
        )
        tokens = [await site.create_token(project.id) for _ in range(a.num)]
    lines = [f"PROJECT: {project.id}"] + [f"TOKEN: {t.token}" for t in tokens]
    if added:
        ctx.out.progress(f"added app {app.slug} ({app.id}) to the library of {site.user}")
    ctx.out.result(
        {
            "project": project.id,
            "name": project.name,
            "status": project.status,
            "app": {"id": app.id, "slug": app.slug},
            "tokens": [t.token for t in tokens],
        },
        lines,
    )


async def cmd_join(ctx: Ctx) -> None:
    a = ctx.args
    token: str | None = a.token
    if a.token_stdin:
        token = ctx.stdin.readline().strip()
    if not token:
        raise UsageError("no token: pass -t TOKEN or --token-stdin")
    async with ctx.website() as site:
        membership = await site.join(token)
        project_id = a.project or membership.project
        project = await site.get_project(project_id)
    ctx.out.result(
        {"project": project.id, "status": project.status, "role": project.role},
        [f"{site.user} joined project {project.id} (status {project.status!r})"],
    )


async def cmd_prep(ctx: Ctx) -> None:
    async with ctx.website() as site:
        project = await site.set_status(ctx.args.project, ProjectStatus.PREPARE)
    ctx.out.result(project, [f"project {project.id}: {project.status}"])


async def _ready_for_upload(ctx: Ctx, site: WebsiteClient, project_id: int) -> Project:
    """Bring the project to `prepare` as fedflow did, but wait instead of failing or hanging.

    A finished or failed project is reset; the coordinator moves it to `prepare`; a
    participant waits (up to --timeout) for the coordinator to do so.
    """
    project = await site.get_project(project_id)
    if project.status == ProjectStatus.RUNNING:
        raise Conflict(
            f"project {project_id} is running: uploads are refused until it ends "
            f"(then: {PROG} reset -p {project_id})",
            user=site.user,
        )
    if project.status != ProjectStatus.PREPARE and project.role == "coordinator":
        if project.status and is_terminal(project.status):
            project = await site.set_status(project_id, ProjectStatus.READY)
            ctx.out.progress(f"project {project_id} was {project.status!r}: reset to 'ready'")
        if project.status != ProjectStatus.PREPARE:
            project = await site.set_status(project_id, ProjectStatus.PREPARE)
    if project.status != ProjectStatus.PREPARE:
        project = await site.wait_for_status(
            project_id,
            {ProjectStatus.PREPARE.value},
            deadline=ctx.args.timeout,
            on_poll=ctx.waiting("the coordinator to set 'prepare'"),
        )
    return project


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: site_info.json holds the site's token."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)


async def cmd_contribute(ctx: Ctx) -> None:
    a = ctx.args
    for path in a.data:
        if not path.is_file():
            raise UsageError(f"no such data file: {path}")
    pid: int = a.project
    async with ctx.website() as site, ctx.controller() as controller:
        if a.data_dir is not None:
            info = await site.get_site()
            a.data_dir.mkdir(parents=True, exist_ok=True)
            _write_private(a.data_dir / SITE_INFO, info.model_dump_json())
        if not await controller.ping():
            await controller.wait_until_up(30.0, who=site.user)
        await _ready_for_upload(ctx, site, pid)
        sent: dict[str, int] = {}
        for path in a.data:
            sent[path.name] = await controller.upload(pid, path)
            ctx.out.progress(f"uploaded {path.name} ({sent[path.name]} bytes)")
        if not a.no_finalize:
            await controller.finalize(pid)
    ctx.out.result(
        {"project": pid, "user": site.user, "uploaded": sent, "finalized": not a.no_finalize},
        [f"{site.user} uploaded {len(sent)} file(s) to project {pid}"]
        + ([] if a.no_finalize else [f"{site.user} finalized project {pid}"]),
    )


async def cmd_monitor(ctx: Ctx) -> None:
    a = ctx.args
    async with ctx.website() as site:
        try:
            project = await site.wait_for_status(
                a.project,
                {ProjectStatus.FINISHED.value},
                deadline=a.timeout,
                on_poll=ctx.waiting("the project to finish"),
            )
        except FcError as exc:
            if a.stop_on_timeout and exc.exit_code == ExitCode.TIMEOUT:
                await site.set_status(a.project, ProjectStatus.STOPPED)
                ctx.out.progress(f"asked the site to shut project {a.project} down")
            raise
    ctx.out.result(project, [f"project {project.id}: {project.status}"])


async def cmd_query(ctx: Ctx) -> None:
    async with ctx.website() as site:
        project = await site.get_project(ctx.args.project)
    ctx.out.result(project, [project.status])


async def cmd_download(ctx: Ctx) -> None:
    a = ctx.args
    pid: int = a.project
    async with ctx.controller() as controller:
        runs = await controller.project_runs(pid)
        if not runs:
            raise NotFound(
                f"the controller has no run of project {pid}", endpoint="GET /project-runs/"
            )
        if a.run is None:
            run = runs[0]
        else:
            matching = [r for r in runs if r.runNr == a.run]
            if not matching:
                have = ", ".join(str(r.runNr) for r in runs)
                raise NotFound(f"project {pid} has no run {a.run} (runs: {have})")
            run = matching[0]
        if not run.resultSteps:
            raise NotFound(f"run {run.runNr} of project {pid} has no result yet")
        a.out.mkdir(parents=True, exist_ok=True)
        files: list[Path] = []
        for step in run.logSteps:
            files.append(await controller.download_log(pid, run.runNr, step, a.out))
        for step in run.resultSteps:
            files.append(await controller.download_result(pid, run.runNr, step, a.out))
    ctx.out.result(
        {"project": pid, "run": run.runNr, "files": files},
        [str(f) for f in files],
    )


async def cmd_reset(ctx: Ctx) -> None:
    a = ctx.args
    pid: int = a.project
    async with ctx.website() as site:
        project = await site.get_project(pid)
        if project.status == ProjectStatus.RUNNING:
            await site.set_status(pid, ProjectStatus.STOPPED)
            await site.wait_for_status(
                pid,
                {ProjectStatus.STOPPED.value, ProjectStatus.FINISHED.value, "error", "failed"},
                deadline=a.timeout,
                on_poll=ctx.waiting("the project to stop"),
            )
        if project.status != ProjectStatus.READY:
            project = await site.set_status(pid, ProjectStatus.READY)
    ctx.out.result(project, [f"project {project.id}: {project.status}"])


async def cmd_list_apps(ctx: Ctx) -> None:
    user = ctx.args.user or ""
    site = WebsiteClient(ctx.args.website_url, user, SecretStr(""), rate=ctx.args.rate)
    async with site:
        apps = await site.apps()
    ctx.out.result(apps, [f"{app.id}\t{app.slug}\t{app.name or ''}".rstrip() for app in apps])


async def cmd_signup(ctx: Ctx) -> None:
    a = ctx.args
    if a.password_stdin:
        line = ctx.stdin.readline().rstrip("\n")
        if not line:
            raise UsageError("--password-stdin: stdin gave no password")
        password = SecretStr(line)
    else:
        password = ctx.password(a.email)
    user = await WebsiteClient.signup(
        a.website_url, a.email, password, a.first_name, a.last_name, role=a.role
    )
    async with WebsiteClient(a.website_url, a.email, password, rate=a.rate, burst=a.burst) as s:
        site = await s.ensure_site(a.site_name or a.email)
    ctx.out.result(
        {"user": user, "site": {"id": site.id, "name": site.name}},
        [f"created user {a.email} with site {site.name!r} ({site.id})"],
    )


COMMANDS: dict[str, Callable[[Ctx], Awaitable[None]]] = {
    "create": cmd_create,
    "join": cmd_join,
    "prep": cmd_prep,
    "contribute": cmd_contribute,
    "monitor": cmd_monitor,
    "query": cmd_query,
    "download": cmd_download,
    "reset": cmd_reset,
    "list-apps": cmd_list_apps,
    "signup": cmd_signup,
}


# --- entry points ---------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


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
        stderr.write(f"{PROG}: warning: {_one_line(str(message))}\n")

    try:
        args = parse_args(argv)
    except UsageError as exc:
        stderr.write(f"{PROG}: error: {_one_line(str(exc))}\n")
        return int(ExitCode.USAGE)
    except SystemExit as exc:  # argparse: --help, --version, bad usage
        code = exc.code if isinstance(exc.code, int) else int(ExitCode.USAGE)
        return code
    out = Out(args.json, stdout, stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        try:
            await COMMANDS[args.cmd](Ctx(args, out, stdin))
        except FcError as exc:
            stderr.write(f"{PROG}: error: {_one_line(str(exc))}\n")
            return int(exc.exit_code)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            stderr.write(f"{PROG}: error: {_one_line(str(exc))}\n")
            return int(ExitCode.USAGE)
        except OSError as exc:
            stderr.write(f"{PROG}: error: {_one_line(str(exc))}\n")
            return int(ExitCode.OTHER)
    return int(ExitCode.OK)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return asyncio.run(amain(argv))
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
