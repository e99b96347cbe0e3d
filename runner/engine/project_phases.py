"""The project's phases, done by the coordinator on the website: project, tokens, prepare, watch.

No project exists before every site answered and every user logged in, since a host or a
password that fails then must not leave a project behind; and every step is recorded before
the next, so that a resume never makes a second project or a second token for a site.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from pydantic import SecretStr

from fcapi.backoff import Again, retry
from fcapi.errors import (
    Conflict,
    FcError,
    NotFound,
    PermissionDenied,
    ProjectFailed,
    TransportError,
    WaitTimeout,
)
from fcapi.http import DeadlinePassed, RetryPolicy, deadline_scope
from fcapi.models import Project
from fcapi.status import TERMINAL
from fcapi.website import WebsiteClient
from runner.engine.checkpoint import project_name, utcnow
from runner.engine.context import SHUTDOWN_DEADLINE, RunContext, SiteRun, failure_line
from runner.engine.liveness import first_of, name_failing_sites, watch_controllers
from runner.errors import RunFailed
from runner.plan.apps import workflow_apps

#: a project a failed run leaves behind, which a resume runs again
ENDED_UNFINISHED = frozenset({"stopped", "error", "failed"})
#: tries of a create that is made safe to repeat: as many as of any request safe to repeat
ATTEMPTS = RetryPolicy().attempts


async def project_pipeline(run: RunContext) -> None:
    """Project, tokens, prepare, watch: the coordinator's work on the website.

    Every request is bounded by the run's deadline; a failure names the sites its
    controllers' logs blame and stops the project, so that nothing is left running.
    """
    try:
        with deadline_scope(run.deadline_at):
            await _project_steps(run)
    except Exception as exc:
        run.abort.set()
        with deadline_scope(time.monotonic() + SHUTDOWN_DEADLINE):
            await blame_sites(run, exc)
            run.failures.setdefault("project", failure_line(exc) + await stop_project(run))
    finally:
        run.finished.set()


async def _project_steps(run: RunContext) -> None:
    await run.until(run.all_ready, "every site to connect and log in")
    await make_project(run)
    await make_tokens(run)
    run.check_all_joined()  # a resume may find every site joined already
    await run.until(run.all_joined, "every participant to join")
    await check_members(run)
    await prepare(run)
    try:
        await run.until(run.uploads_done, "every site to finalize")
    except RunFailed as exc:
        late = [n for n, s in run.state.sites.items() if not s.finalized]
        raise RunFailed(
            f"project {run.state.project_id} stayed in prepare: "
            f"{', '.join(late)} never finalized ({exc})"
        ) from None
    await watch(run)


async def blame_sites(run: RunContext, exc: Exception) -> None:
    """A project that failed or hung: each site its controller's log blames, named first."""
    pid = run.state.project_id
    # a website that stopped answering (DeadlinePassed) blames no site
    stuck = isinstance(exc, WaitTimeout) and not isinstance(exc, DeadlinePassed)
    ran = isinstance(exc, ProjectFailed) or (stuck and run.project_ran())
    if pid is None or not ran:
        return
    hung = not isinstance(exc, ProjectFailed)
    with contextlib.suppress(Exception):  # a log that cannot be read blames nobody
        for name, why in (await name_failing_sites(run, pid, hung=hung)).items():
            run.failures.setdefault(name, f"site {name}: {why}, while the run was in watch")


async def stop_project(run: RunContext) -> str:
    """Stop a failing run's project if it is still running; what was done, to add to its line.

    A project left `running` keeps its apps running at every site and has to be stopped by
    hand; one in `prepare` runs nothing and waits for a resume, so it is left as it is.
    """
    pid = run.state.project_id
    if pid is None:
        return ""
    web = run.web(run.coordinator)
    try:
        project = await web.get_project(pid)
        if project.status != "running":
            return ""
        if run.options.keep_project_running:
            run.skip(None, "shutdown", "--keep-project-running")
            return f"; project {pid} left running (--keep-project-running)"
        async with run.phase(None, "shutdown"):
            run.project = await web.set_status(pid, "shutdown")
    except FcError as exc:
        return f"; project {pid} may still be running: stopping it failed ({failure_line(exc)})"
    return f"; project {pid} stopped (status {run.project.status!r}) so that nothing runs on"


async def make_project(run: RunContext) -> None:
    web = run.web(run.coordinator)
    record = run.state.phases.get("project")
    if run.state.project_id is not None and record is not None and record.state == "ok":
        run.skip(None, "project", f"project {run.state.project_id} exists")
        run.project = await web.get_project(run.state.project_id)
        if run.project.status in ENDED_UNFINISHED:
            await run_again(run, web)
        return
    async with run.phase(None, "project"):
        if run.workflow.project_id is not None:
            project = await reuse_project(run, web, run.workflow.project_id)
        else:
            project = await create_project(run, web)
        run.state.record_project(project.id)
        await run.saver.flush()
        run.project = project


async def run_again(run: RunContext, web: WebsiteClient) -> None:
    """A resume of a run whose project ended without finishing (a failing run stops its
    project): back to `ready`, so that it is prepared, every site finalizes, and it runs again.

    Done before `prepare`, which every site's upload waits for, so no site has decided yet.
    """
    assert run.project is not None
    ended = run.project.status
    run.project = await web.set_status(run.project.id, "ready")
    run.state.finish_phase(None, "prepare", "failed", f"the project ended {ended!r}: runs again")
    for record in run.state.sites.values():
        record.finalized = False
    await run.saver.flush()


async def create_project(run: RunContext, web: WebsiteClient) -> Project:
    """A new project with the workflow's apps in order, in two steps a resume can finish.

    The project id is recorded the moment it exists, and the intent before that, so a run
    cut off in between finds its project (by id, or by the run id in its name) and only
    sets the workflow it may still lack, instead of creating a second project.
    """
    assert run.workflow.apps
    name = project_name(run.state.run_id)
    project: Project | None = None
    if run.state.project_id is not None:
        project = await web.get_project(run.state.project_id)
    elif run.state.project_create_started_at is not None:
        for candidate in await web.list_projects():
            if candidate.name == name:
                project = await web.get_project(candidate.id)
    if project is not None and project.status not in ("", "init"):
        return project  # its workflow is set: nothing left to do
    app_ids = await workflow_app_ids(run, web)
    if project is None:
        run.state.project_create_started_at = utcnow()
        await run.saver.flush()
        project = await create_named(web, name, f"fedstack run {run.state.run_id}")
        run.state.record_project(project.id)
        await run.saver.flush()
    return await web.set_workflow(project.id, app_ids)


async def workflow_app_ids(run: RunContext, web: WebsiteClient) -> list[int]:
    """Each step's app id, in order, every app in the coordinator's library; the ids are
    recorded in the state's steps (the report names each step by slug and id)."""
    apps = await workflow_apps(web, run.workflow.apps)
    for app in {app.id: app for app in apps}.values():
        await web.add_to_library(app.id)
    for step, app in zip(run.state.steps, apps, strict=True):
        step.app_id = app.id
    await run.saver.flush()
    return [app.id for app in apps]


async def create_named(web: WebsiteClient, name: str, description: str) -> Project:
    """Create the project once, even when the site answers 5xx or the answer is lost.

    The run id in its name makes it unique: after such a failure the project of that name,
    if the site made it, is the one; else the create is sent again, with the backoff of any
    request that is safe to repeat.
    """

    async def attempt() -> Project:
        try:
            return await web.create_project(name, description=description)
        except TransportError as exc:
            for candidate in await web.list_projects():
                if candidate.name == name:
                    return candidate
            raise Again(exc) from None

    return await retry(attempt, retry_on=lambda e: isinstance(e, Again), attempts=ATTEMPTS)


async def reuse_project(run: RunContext, web: WebsiteClient, project_id: int) -> Project:
    """An existing project: brought back to `ready` if an earlier run left it ended."""
    project = await web.get_project(project_id)
    if project.role not in (None, "coordinator"):
        raise RunFailed(
            f"project {project_id}: {run.coordinator.entry.fc_user} is not its coordinator"
        )
    if project.status in {str(s) for s in TERMINAL} or project.status == "prepare":
        project = await web.set_status(project_id, "ready")
    return project


async def make_tokens(run: RunContext) -> None:
    """One token per participant that is not yet a member, each saved before it is used.

    On a project that existed before this run, each participant first asks the website with
    its own login, all at once, whether it is a member: a repeated run on one project then
    makes no token at all, where the coordinator would make one per participant at 3 per s.
    """
    assert run.project is not None
    web = run.web(run.coordinator)
    todo: list[SiteRun] = []
    for site in run.sites.values():
        if site is run.coordinator:
            continue
        record = run.state.site(site.entry.name)
        if record.joined or record.token is not None:
            site.token_ready.set()
        else:
            todo.append(site)
    if not todo:
        run.skip(None, "tokens", "every participant has a token")
        return
    async with run.phase(None, "tokens"):
        if run.workflow.project_id is not None:
            todo = await not_members(run, todo)
        if not todo:
            return
        # the tokens there are now: one that appears after a lost answer is the one made
        known = {t.id for t in await web.list_tokens(run.project.id)}
        for site in todo:
            if run.abort.is_set():
                raise RunFailed(f"stopped creating tokens: {run.first_failure()}")
            token = await web.create_token(run.project.id, known=known)
            known.add(token.id)
            run.state.site(site.entry.name).token = SecretStr(token.token)
            await run.saver.flush()
            site.token_ready.set()


async def not_members(run: RunContext, sites: list[SiteRun]) -> list[SiteRun]:
    """The sites whose users are not members of the run's project, each asked as itself.

    Every user has a rate bucket of its own, so the answers come in parallel; a member is
    recorded as joined (its join is skipped) before the next step.
    """
    assert run.project is not None
    pid = run.project.id
    # a host-held site cannot be asked as itself here: it gets a token, and its host's join
    # (fcapi site-join) finds it a member already
    asked = [s for s in sites if not s.entry.host_held]
    answers = await asyncio.gather(*(is_member(run.web(s), pid) for s in asked))
    members = {s.entry.name for s, member in zip(asked, answers, strict=True) if member}
    for site in asked:
        if site.entry.name in members:
            run.state.site(site.entry.name).joined = True
            site.token_ready.set()
    await run.saver.flush()
    return [s for s in sites if s.entry.name not in members]


async def is_member(web: WebsiteClient, project_id: int) -> bool:
    """Whether the client's user is a member of the project: it answers members only."""
    try:
        await web.get_project(project_id)
    except (NotFound, PermissionDenied):
        return False
    return True


async def check_members(run: RunContext) -> None:
    """The project's members are the inventory's sites, one each, or its answer is wrong.

    Two sites that share a FeatureCloud user join as one member, and a stranger holding a
    token adds one; either way the project would compute over other data than the inventory
    names. The coordinator is a member by creating the project, every other member used one
    token, so the project's used tokens count its members.
    """
    assert run.project is not None
    pid = run.project.id
    tokens = await run.web(run.coordinator).list_tokens(pid)
    used = {t.token for t in tokens if t.used}
    members, sites = 1 + len(used), len(run.sites)
    if members == sites:
        return
    unused = [
        name
        for name, record in run.state.sites.items()
        if record.token is not None and record.token.get_secret_value() not in used
    ]
    why = (
        f"; the token of {', '.join(unused)} was never used (is its FeatureCloud user "
        "another site's too?)"
        if unused
        else ""
    )
    raise RunFailed(f"project {pid} has {members} members but the inventory has {sites} sites{why}")


async def prepare(run: RunContext) -> None:
    """The coordinator starts the project; a resume that did so already skips it."""
    assert run.project is not None
    record = run.state.phases.get("prepare")
    if record is not None and record.state in ("ok", "skipped"):
        run.skip(None, "prepare", "started already")
    else:
        async with run.phase(None, "prepare"):
            web = run.web(run.coordinator)
            try:
                run.project = await web.set_status(run.project.id, "prepare")
            except Conflict:
                # killed after the request and before the checkpoint: fine if it took
                project = await web.get_project(run.project.id)
                if project.status not in ("prepare", "running", "finished"):
                    raise
                run.project = project
    run.prepared.set()


async def watch(run: RunContext) -> None:
    """Wait for the project's end while the controllers are pinged; note when it ran."""
    assert run.project is not None
    web = run.web(run.coordinator)
    pid = run.project.id

    def seen(project: Project, *_: object) -> None:
        if project.status == "running" and run.running_seen is None:
            run.running_seen = time.monotonic()
            run.progress.phase(None, "watch", "running", "project running")

    async with run.phase(None, "watch"):
        try:
            project = await first_of(
                web.wait_for_status(pid, {"finished"}, deadline=run.remaining(), on_poll=seen),
                watch_controllers(
                    # a site collected by an earlier attempt has no controller to ping
                    [s for s in run.sites.values() if s.controller is not None],
                    run.state.project_id,
                    run.failures,
                ),
            )
        except ProjectFailed as exc:
            run.ended_seen = time.monotonic()
            run.project = run.project.model_copy(update={"status": exc.status})
            raise
        except FcError:
            run.ended_seen = time.monotonic()
            raise
        run.ended_seen = time.monotonic()
        if run.running_seen is None:
            run.running_seen = run.ended_seen
        run.project = project
