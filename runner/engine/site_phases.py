"""A site's phases, from connect to stop: every site runs its own pipeline in parallel.

Between the barriers nothing waits for anything it does not need: participants log in and
start controllers while the coordinator is still creating tokens, and a participant joins the
moment its own token exists. Collection and stop run even after a failure elsewhere (results
and logs are worth keeping, controllers must not be left running), each with a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import time

from fcapi.controller import ControllerClient
from fcapi.errors import FcError
from fcapi.files import sha256_file
from fcapi.http import deadline_scope
from runner.collect.download import NoResults, collect_site
from runner.engine import held
from runner.engine.checkpoint import CollectedFile, UploadedFile
from runner.engine.context import RAN, RunContext, SiteRun, failure_line
from runner.engine.project_phases import is_member
from runner.errors import RunFailed
from runner.plan.workflow import CONFIG_NAME
from runner.sites import shell
from runner.sites.registry import open_site

#: collection and stop run after the run's deadline too (results are worth keeping), bounded
COLLECT_DEADLINE = 600.0
STOP_DEADLINE = 120.0
#: how long the small commands a phase runs on a host (a check, a mkdir) may take
SHORT_COMMAND_TIMEOUT = 30.0


async def site_pipeline(run: RunContext, site: SiteRun) -> None:
    """One site from connect to stop; collection and stop run even after a failure.

    Requests end by the run's deadline (collection, after it, by a bound of its own), and a
    failure's line names the site and the phase it happened in.
    """
    name = site.entry.name
    try:
        with deadline_scope(run.deadline_at):
            async with asyncio.timeout(run.deadline_at - time.monotonic()):
                await _until_finalized(run, site)
    except TimeoutError:
        phase = site.current_phase or "start"
        message = f"deadline of {run.workflow.deadline_seconds:.0f} s passed"
        run.state.finish_phase(name, phase, "failed", message)
        run.fail(name, RunFailed(f"site {name}: {message} in phase {phase}"))
    except Exception as exc:
        run.fail(name, exc)
    finally:
        run.check_all_finalized()
    with contextlib.suppress(Exception):
        await run.until(run.finished, "the project to end")
    if collected(run, name):
        run.skip(name, "collect", "collected already")
    elif site.controller is not None and run.project_ran():
        try:
            with deadline_scope(time.monotonic() + COLLECT_DEADLINE):
                async with asyncio.timeout(COLLECT_DEADLINE):
                    await collect(run, site)
        except Exception as exc:
            run.failures.setdefault(name, failure_line(exc) or "collect: deadline passed")
    try:
        async with asyncio.timeout(STOP_DEADLINE):
            await stop(run, site)
    except Exception as exc:
        run.failures.setdefault(name, failure_line(exc) or "stop: deadline passed")


async def _until_finalized(run: RunContext, site: SiteRun) -> None:
    """The site's part up to its finalize; a site collected already only reconnects."""
    name = site.entry.name
    await connect(run, site)
    if collected(run, name):
        for phase in ("controller", "join", "upload", "finalize"):
            run.skip(name, phase, "collected already")
        return
    await controller_up(run, site)
    await join(run, site)
    await run.until(run.prepared, "the coordinator to start the project")
    await upload(run, site)
    await finalize(run, site)


def collected(run: RunContext, name: str) -> bool:
    """Whether the site's results are home for good, so that a resume leaves the site alone.

    A collection that brought no result (it ran while the project had not finished, say
    after a watch that gave up) is not: a resume collects again.
    """
    record = run.state.site(name)
    return record.collect_done and any(c.kind == "result" for c in record.collected)


async def connect(run: RunContext, site: SiteRun) -> None:
    """Reach the host and log its user in, so a bad host or password stops the run early."""
    async with run.phase(site.entry.name, "connect"):
        site.conn = open_site(site.entry, connect_timeout=run.options.connect_deadline)
        if site.entry.host_held:  # its host logs in: the runner has no password for it
            await site.conn.connect()
            await held.check_login(run, site)
        else:
            await asyncio.gather(site.conn.connect(), run.pool.logged_in(site.entry.fc_user))
        await check_host_files(run, site)
    site.ready = True
    if all(s.ready for s in run.sites.values()):
        run.all_ready.set()


async def check_host_files(run: RunContext, site: SiteRun) -> None:
    """Every file the workflow names on the site's host is there, readable, not a folder.

    Local files were checked with the workflow; these can only be checked on the host,
    and must be before the project exists.
    """
    assert site.conn is not None
    paths = [h.path for h in run.workflow.sites[site.entry.name].host]
    if not paths:
        return
    result = await site.conn.run(shell.unreadable_files(paths), timeout=SHORT_COMMAND_TIMEOUT)
    missing = [line for line in result.stdout.splitlines() if line]
    if missing:
        raise RunFailed(
            f"site {site.entry.name}: not a readable file on the host: {', '.join(missing)}"
        )


async def controller_up(run: RunContext, site: SiteRun) -> None:
    """The controller started, unless it answers already (a resumed run)."""
    assert site.conn is not None
    async with run.phase(site.entry.name, "controller"):
        url = await site.conn.controller_url()
        site.controller = ControllerClient(url)
        if not await site.controller.ping():
            await site.conn.start_controller()
            await site.controller.wait_until_up(
                run.options.controller_deadline, who=f"site {site.entry.name}"
            )


async def write_site_info(run: RunContext, site: SiteRun) -> None:
    """Tell the controller which site it serves: the body of `GET /api/site/`.

    Done just before the uploads rather than at controller start (the controller reads
    it when it needs it), so the coordinator's request for it does not queue in front
    of the project, its tokens and `prepare` in the coordinator's rate limit.
    """
    assert site.conn is not None
    if site.entry.host_held:
        await held.write_site_info(run, site)
        return
    data_dir = site.entry.controller.data_dir
    carried = run.options.carried
    key = (site.entry.name, data_dir)
    if carried is not None and key in carried.site_info:
        site.site_info = carried.site_info[key]  # written there by this series already
        return
    site.site_info = await run.web(site).ensure_site(site.entry.name)
    await site.conn.run(shell.make_dir(data_dir), timeout=SHORT_COMMAND_TIMEOUT)
    await site.conn.write_file(
        posixpath.join(data_dir, "site_info.json"),
        site.site_info.model_dump_json(),
        mode=0o600,
    )
    if carried is not None:
        carried.site_info[key] = site.site_info


async def join(run: RunContext, site: SiteRun) -> None:
    name = site.entry.name
    record = run.state.site(name)
    if site is run.coordinator or record.joined:
        run.skip(name, "join", "coordinator" if site is run.coordinator else "joined")
        run.check_all_joined()
        return
    await run.until(site.token_ready, f"a project token for {name}")
    if record.joined:  # a member of a project that existed before: it asked as itself
        run.skip(name, "join", "a member already")
        run.check_all_joined()
        return
    token = record.token
    assert token is not None and run.project is not None
    async with run.phase(name, "join"):
        if site.entry.host_held:
            await held.join(run, site, token.get_secret_value())
            record.joined = True
            await run.saver.flush()
            run.check_all_joined()
            return
        web = run.web(site)
        try:
            await web.join(token.get_secret_value())
        except FcError as exc:
            # A run killed between join and checkpoint finds its token used: fine if the
            # user is a member now, which the project answering it proves.
            if not await is_member(web, run.project.id):
                raise exc from None
        record.joined = True
        await run.saver.flush()
    run.check_all_joined()


async def upload(run: RunContext, site: SiteRun) -> None:
    """The site's data and the app's config to its controller; skipped once finalized."""
    name = site.entry.name
    record = run.state.site(name)
    assert run.project is not None
    if not record.finalized and run.resumed:
        # killed between a finalize and its checkpoint: the project moving on proves it
        asker = run.coordinator if site.entry.host_held else site
        project = await run.web(asker).get_project(run.project.id)
        record.finalized = project.status in RAN
    if record.finalized:
        run.skip(name, "upload", "finalized already")
        return
    async with run.phase(name, "upload"):
        await write_site_info(run, site)
        if run.workflow.project_id is not None and record.runs_before is None:
            assert site.controller is not None
            runs = await site.controller.project_runs(run.project.id)
            record.runs_before = max((r.runNr for r in runs), default=0)
        await _upload_files(run, site, run.project.id)


async def _upload_files(run: RunContext, site: SiteRun, pid: int) -> None:
    """Local files and the config through the tunnel; host files by the host itself."""
    assert site.controller is not None and site.conn is not None
    record = run.state.site(site.entry.name)
    plan = run.workflow.sites[site.entry.name]
    local = [(f.path, f.name) for f in plan.local]
    if run.workflow.config is not None:
        local.append((run.workflow.config, CONFIG_NAME))
    for path, file_name in local:
        sent = await site.controller.upload(pid, path, file_name)
        record.uploaded[file_name] = UploadedFile(
            name=file_name,
            source=str(path),
            location="local",
            size=sent,
            sha256=await asyncio.to_thread(sha256_file, path),
        )
    for host in plan.host:
        sent = await site.conn.upload_host_file(
            site.entry.controller.port, pid, host.path, host.name
        )
        record.uploaded[host.name] = UploadedFile(
            name=host.name, source=host.path, location="host", size=sent
        )


async def finalize(run: RunContext, site: SiteRun) -> None:
    name = site.entry.name
    record = run.state.site(name)
    if record.finalized:
        run.skip(name, "finalize", "finalized already")
        return
    assert site.controller is not None and run.project is not None
    async with run.phase(name, "finalize"):
        await site.controller.finalize(run.project.id)
        record.finalized = True
        await run.saver.flush()


async def collect(run: RunContext, site: SiteRun) -> None:
    assert site.controller is not None and run.project is not None
    name = site.entry.name
    record = run.state.site(name)
    # logs are fetched again: one taken before the project ended may have grown since
    results = [c for c in record.collected if c.kind == "result"]

    async def keep(entry: CollectedFile) -> None:
        key = (entry.kind, entry.run, entry.step)
        record.collected = [c for c in record.collected if (c.kind, c.run, c.step) != key]
        record.collected.append(entry)
        await run.saver.flush()

    async with run.phase(name, "collect"):
        try:
            await collect_site(
                site.controller,
                run.project.id,
                run.workflow.outdir / run.state.run_id,
                name,
                results,
                keep,
                run.workflow.unpack,
                after=record.runs_before or 0,
            )
        except NoResults:
            # only a finished project owes every site a result; after a failure
            # elsewhere the logs are what there is, and this site did nothing wrong
            if run.project.status == "finished":
                raise
        # a project that did not finish runs again on resume: its results are still to come
        record.collect_done = run.project.status == "finished"
        await run.saver.flush()  # a resume neither restarts nor collects this site again


async def stop(run: RunContext, site: SiteRun) -> None:
    if site.conn is None:
        return
    name = site.entry.name
    if run.options.keep_controllers:
        run.skip(name, "stop", "--keep-controllers")
        return
    if site.controller is not None:
        await site.controller.aclose()  # an open keep-alive would hold its shutdown up
    async with run.phase(name, "stop"):
        await site.conn.stop_controller()
