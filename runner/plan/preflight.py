"""What is checked on the website and the sites' own disks before a run folder or a project exists.

The workflow file, the inventory and the passwords are checked offline (runner.plan); these
checks need the website: it answers, every user's password is right, the app exists, a
reused project exists and is the coordinator's. Each failure is a `BadInput` (exit 2, nothing
touched) naming what and where, where it used to cost a run folder, a project and exit 11.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from pathlib import Path
from urllib.parse import urlsplit

from fcapi.errors import AuthError, FcError, NotFound, PermissionDenied, TransportError
from fcapi.website import WebsiteClient, WebsitePool
from fedinfra.inventory import Inventory
from runner.errors import BadInput, RunFailed
from runner.plan.apps import MissingApp, workflow_apps
from runner.plan.workflow import Workflow, writable_folder

#: the whole preflight; a website that takes longer is not one a run can use now
PREFLIGHT_DEADLINE = 60.0
#: logins in flight at once (each user has a rate bucket of its own)
LOGINS_AT_ONCE = 16
#: what the website's answer means for the user: their input is wrong, or the platform is down
_BAD_INPUT = (AuthError, PermissionDenied, NotFound, TransportError)


async def preflight(inventory: Inventory, workflow: Workflow, pool: WebsitePool) -> None:
    """Raise `BadInput` for the first input the website or a local site refuses.

    The run's own pool is used, so a user logged in here stays logged in for the run: one
    login per user per run, as FeatureCloud's etiquette asks.
    """
    check_website_url(pool.base_url)
    check_local_sites(inventory, workflow)
    seconds = min(PREFLIGHT_DEADLINE, workflow.deadline_seconds)
    try:
        async with asyncio.timeout(seconds):
            await _on_the_website(pool, inventory, workflow)
    except TimeoutError:
        raise BadInput(
            f"the website {pool.base_url} did not answer the preflight checks within {seconds:g} s"
        ) from None


async def _on_the_website(pool: WebsitePool, inventory: Inventory, workflow: Workflow) -> None:
    # a host-held site's user logs in on its host, when the run connects to it
    users = list(dict.fromkeys(s.fc_user for s in inventory.sites if not s.host_held))
    limit = asyncio.Semaphore(LOGINS_AT_ONCE)

    async def login(user: str) -> None:
        async with limit:
            await _checked(f"FeatureCloud user {user}", pool.logged_in(user))

    # all at once (a federation of hundreds), the first failure in inventory order reported
    for outcome in await asyncio.gather(*map(login, users), return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome
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
    return BadInput(line) if isinstance(exc, _BAD_INPUT) else RunFailed(f"preflight: {line}")


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
