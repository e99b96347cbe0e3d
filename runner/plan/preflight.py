"""What is checked on the website and at the sites before a run folder or a project exists.

The workflow file, the inventory and the passwords are checked offline (runner.plan); these
checks need the website and the hosts: every site ready (runner.plan.checks, the same checks
`python -m runner check` reports: reachable, runtime, port, disk, clock, login), the app
exists, a reused project exists and is the coordinator's. A wrong password or a missing app
is a `BadInput` (exit 2); a site that is not ready is `RunFailed` (exit 11, sites failed);
either way nothing is touched and the line names what and where.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from pathlib import Path
from urllib.parse import urlsplit

from fcapi.errors import FcError, NotFound
from fcapi.website import WebsiteClient, WebsitePool
from fedinfra.inventory import Inventory
from runner.errors import EXIT_BAD_INPUT, BadInput, RunFailed
from runner.plan.apps import MissingApp, workflow_apps
from runner.plan.checks.base import Limits
from runner.plan.checks.login import BAD_INPUT
from runner.plan.checks.sites import Readiness, check_sites
from runner.plan.workflow import Workflow, writable_folder
from runner.sites.base import CONNECT_TIMEOUT

#: the whole preflight; a website or a site that takes longer is not one a run can use now
PREFLIGHT_DEADLINE = 60.0


async def preflight(inventory: Inventory, workflow: Workflow, pool: WebsitePool) -> Readiness:
    """Raise `BadInput` for the first input the website or a local site refuses.

    The run's own pool is used, so a user logged in here stays logged in for the run: one
    login per user per run, as FeatureCloud's etiquette asks. The checks' findings are
    returned: what each host is, and its host files' sha256, are the run's provenance.
    """
    check_website_url(pool.base_url)
    check_local_sites(inventory, workflow)
    seconds = min(PREFLIGHT_DEADLINE, workflow.deadline_seconds)
    try:
        async with asyncio.timeout(seconds):
            connect = min(CONNECT_TIMEOUT, seconds / 2)
            files = {name: [f.path for f in plan.host] for name, plan in workflow.sites.items()}
            readiness = await check_sites(
                inventory, pool, Limits(), connect_timeout=connect, host_files=files
            )
            stop_if_not_ready(readiness)
            await _on_the_website(pool, inventory, workflow)
    except TimeoutError:
        raise BadInput(
            f"the website {pool.base_url} or a site did not answer the preflight checks within "
            f"{seconds:g} s (python -m runner check says which)"
        ) from None
    return readiness


def stop_if_not_ready(readiness: Readiness) -> None:
    """The first problem as the run's one line: bad input (a password) or a site not ready."""
    problems = readiness.problems
    if not problems:
        return
    first = problems[0]
    more = len(problems) - 1
    line = first.line() + (f" (and {more} more: python -m runner check lists them)" if more else "")
    raise BadInput(line) if first.exit_code == EXIT_BAD_INPUT else RunFailed(line)


async def _on_the_website(pool: WebsitePool, inventory: Inventory, workflow: Workflow) -> None:
    web = pool.client(inventory.coordinator.fc_user)
    await _check_apps(web, workflow)
    if workflow.project_id is not None:
        where = f"{workflow.source}: field project_id"
        try:
            project = await web.get_project(workflow.project_id)
        except NotFound:
            raise BadInput(
                f"{where}: no project {workflow.project_id} visible to "
                f"{inventory.coordinator.fc_user} on {pool.base_url}"
            ) from None
        except FcError as exc:
            raise _as_runner_error(where, exc) from None
        if project.role not in (None, "coordinator"):
            raise BadInput(
                f"{where}: project {workflow.project_id} is not coordinated by "
                f"{inventory.coordinator.fc_user} (its role there: {project.role})"
            )


async def _check_apps(web: WebsiteClient, workflow: Workflow) -> None:
    """Every step's app is on the site; a missing one is named with its place in the file."""
    if not workflow.apps:
        return
    several = len(workflow.apps) > 1
    try:
        await workflow_apps(web, workflow.apps)
    except MissingApp as exc:
        field = f"apps[{exc.step}]" if several else "app"
        raise _as_runner_error(f"{workflow.source}: field {field}", exc) from None
    except FcError as exc:
        field = "apps" if several else "app"
        raise _as_runner_error(f"{workflow.source}: field {field}", exc) from None


async def _checked(where: str, call: Awaitable[object]) -> None:
    try:
        await call
    except FcError as exc:
        raise _as_runner_error(where, exc) from None


def _as_runner_error(where: str, exc: FcError) -> BadInput | RunFailed:
    line = " ".join(f"{where}: {exc}".split())
    return BadInput(line) if isinstance(exc, BAD_INPUT) else RunFailed(f"preflight: {line}")


def check_website_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"website URL {url[:200]!r}: expected http(s)://HOST[:PORT]")
    try:
        _ = parts.port
    except ValueError:
        raise BadInput(f"website URL {url[:200]!r}: not a valid port") from None


def check_local_sites(inventory: Inventory, workflow: Workflow) -> None:
    """A local site's host is this machine, so its folders and host files are checked now."""
    for site in inventory.sites:
        if site.transport != "local":
            continue
        for field, folder in (
            ("workdir", site.workdir),
            ("controller.data_dir", site.controller.data_dir),
        ):
            where = f"inventory site {site.name!r}, field {field}"
            writable_folder(Path(folder), Path("/"), where)
        for ref in workflow.sites[site.name].host:
            path = Path(ref.path)  # as the host's own check: readable and not a folder
            if not os.access(path, os.R_OK) or path.is_dir():
                raise BadInput(
                    f"{workflow.source}: site {site.name!r}, field host_files: {path} is not "
                    "a readable file on the site's host"
                )
