"""The project commands, fedflow's workflow in order: create, join, prep, contribute,
monitor, query, download, reset. Each command's options sit beside the command itself."""

from __future__ import annotations

import argparse
import re
import secrets
from pathlib import Path

from fcapi.cli.base import (
    PROG,
    AddCommand,
    Ctx,
    UsageError,
    count,
    positive_float,
    positive_int,
    project_arg,
    slug,
)
from fcapi.errors import Conflict, ExitCode, FcError, NotFound
from fcapi.files import write_atomic
from fcapi.models import Project, ProjectStatus
from fcapi.status import is_terminal
from fcapi.website import WebsiteClient

SITE_INFO = "site_info.json"
#: the names a controller stores uploads under (one word: no newline, no path)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


def register(add: AddCommand) -> None:
    create = add(
        "create", "create a project with one app (as its coordinator) and tokens", cmd_create
    )
    create.add_argument("-t", "--tool", type=slug, required=True, help="app slug, e.g. mean-app")
    create.add_argument("-n", "--num", type=count, default=0, help="participant tokens to create")
    create.add_argument("--name", help="project name (default: a random one)")
    create.add_argument("--description", default="", help="project description")

    join = add("join", "join a project with a participant token", cmd_join)
    join.add_argument("-t", "--token", help="participant token (or --token-stdin)")
    join.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    join.add_argument("-p", "--project", type=positive_int, help="project id, to check membership")

    project_arg(
        add("prep", "set a project to 'prepare' (coordinator), which opens uploads", cmd_prep)
    )
    _contribute_options(
        add(
            "contribute", "upload data files to this site's controller and finalize", cmd_contribute
        )
    )
    _monitor_options(add("monitor", "wait until a project finishes", cmd_monitor))
    project_arg(add("query", "print a project's status", cmd_query))

    download = add(
        "download", "download logs and results of a run from the controller", cmd_download
    )
    project_arg(download)
    download.add_argument("-o", "--out", type=Path, default=Path("."), help="directory")
    download.add_argument("--run", type=positive_int, help="run number (default: the newest)")

    reset = add("reset", "bring a project back to 'ready' (stopping it if it runs)", cmd_reset)
    project_arg(reset)
    reset.add_argument(
        "--timeout", type=positive_float, default=120.0, help="seconds to wait (120)"
    )


def _contribute_options(contribute: argparse.ArgumentParser) -> None:
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
        "--timeout", type=positive_float, default=600.0, help="seconds to wait for 'prepare' (600)"
    )


def _monitor_options(monitor: argparse.ArgumentParser) -> None:
    project_arg(monitor)
    monitor.add_argument(
        "-t", "--timeout", type=positive_float, default=3600.0, help="seconds to wait (3600)"
    )
    monitor.add_argument(
        "--stop-on-timeout", action="store_true", help="ask the site to shut the project down"
    )


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


async def cmd_contribute(ctx: Ctx) -> None:
    a = ctx.args
    for path in a.data:
        if not path.is_file():
            raise UsageError(f"no such data file: {path}")
        if not _PLAIN_NAME.fullmatch(path.name):
            raise UsageError(
                f"data file {str(path)[:200]!r}: the controller takes plain file names "
                "(letters, digits, '.', '_', '-'); rename it"
            )
    pid: int = a.project
    async with ctx.website() as site, ctx.controller() as controller:
        if a.data_dir is not None:
            info = await site.get_site()
            # only its owner may read it: site_info.json holds the site's token
            write_atomic(a.data_dir / SITE_INFO, info.model_dump_json(), 0o600)
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
