"""Drive one workflow across the federation, every site in parallel, resumably.

The run is a pipeline per site (connect, controller, join, upload, finalize, collect, stop)
with three barriers where the platform needs every site at once: the coordinator may only
`prepare` when every participant has joined, the project only runs when every site has
finalized, and results exist only once it ended. Between barriers nothing waits for anything
it does not need: participants log in and start controllers while the coordinator is still
creating tokens, and a participant joins the moment its own token exists.

Every step that changes something outside this process is written to the checkpoint before
the next one starts, so `--resume` repeats no step that must not happen twice (a project, a
join with a single-use token, a finalize).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import posixpath
import shlex
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from fcapi.controller import ControllerClient
from fcapi.errors import Conflict, FcError, NotFound, PermissionDenied, ProjectFailed
from fcapi.files import sha256_file, write_atomic
from fcapi.models import Project, Site
from fcapi.stats import RequestStats
from fcapi.status import TERMINAL
from fcapi.website import WebsiteClient, WebsitePool
from fedinfra.inventory import Inventory, SiteEntry
from runner.collect.fetch import NoResults, collect_site
from runner.engine.checkpoint import (
    CollectedFile,
    RunState,
    UploadedFile,
    project_name,
    state_path,
    state_snapshot,
    utcnow,
)
from runner.outputs.progress import Progress
from runner.plan.workflow import CONFIG_NAME, Workflow
from runner.sites.base import SiteConnection, TransportError, open_site

#: how long a site may take to accept SSH (a VM still booting refuses for a while)
CONNECT_DEADLINE = 120.0
#: how long a controller may take to answer /ping/ after its start command returned
CONTROLLER_DEADLINE = 180.0
#: collection and stop run after the run's deadline too (results are worth keeping), bounded
COLLECT_DEADLINE = 600.0
STOP_DEADLINE = 120.0
#: while the project runs, every controller is pinged this often; this many misses in a row
#: and its site is called dead
LIVENESS_PERIOD = 2.0
LIVENESS_MISSES = 3
#: statuses of a project that ran (so its controllers have results or logs)
RAN = frozenset({"running", "finished", "error", "failed", "stopped"})


class RunFailed(Exception):
    """The run cannot go on; one line naming the site (or the project) and what failed."""


@dataclass
class RunOptions:
    website_url: str
    keep_controllers: bool = False
    connect_deadline: float = CONNECT_DEADLINE
    controller_deadline: float = CONTROLLER_DEADLINE
    rate: float = 3.0
    burst: int = 3


@dataclass
class SiteRun:
    """What the run holds for one site while it is under way."""

    entry: SiteEntry
    conn: SiteConnection | None = None
    controller: ControllerClient | None = None
    site_info: Site | None = None
    token_ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: connected and its user logged in
    ready: bool = False
    #: the phase under way, for a deadline's message
    current_phase: str | None = None


@dataclass
class RunResult:
    state: RunState
    project: Project | None
    stats: RequestStats
    #: seconds between the project entering `running` and its end, as this runner saw them
    app_seconds: float | None
    wall_seconds: float
    failures: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.failures and self.project is not None and self.project.status == "finished"


class Saver:
    """Writes the checkpoint after every change, coalescing bursts from many sites.

    `flush()` returns once a write that includes the caller's change is on disk, so the next
    step never starts before the file holds the last one (a project id, a token, a join). The
    state is copied to text in the event loop (a consistent snapshot) and written, with its
    fsync, in a thread; changes that arrive during a write share the next one. A hundred
    sites changing state at once thus cost a few writes, not a few hundred, and never block
    the loop the other sites run on.
    """

    def __init__(self, state: RunState, outdir: Path) -> None:
        self.state = state
        self.path = state_path(outdir, state.run_id)
        self._asked = 0
        self._written = 0
        self._changed = asyncio.Condition()
        self._writer: asyncio.Task[None] | None = None

    def mark(self) -> None:
        """Ask for a write without waiting: for records a crash may lose (phase timings).

        A failed write surfaces at the next `flush()`, which writes the same state again.
        """
        self._asked += 1
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())

    async def flush(self) -> None:
        self._asked += 1
        wanted = self._asked
        while self._written < wanted:
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write_pending())
            writer = self._writer
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._settled, wanted, writer))
            if writer.done() and self._written < wanted:
                error = writer.exception()
                if error is not None:
                    raise error  # the write failed (disk full, say): the run must know

    def _settled(self, wanted: int, writer: asyncio.Task[None]) -> bool:
        return self._written >= wanted or writer.done()

    async def _write_pending(self) -> None:
        try:
            while self._written < self._asked:
                covers = self._asked
                text = state_snapshot(self.state)
                await asyncio.to_thread(write_atomic, self.path, text, 0o600)
                self._written = covers
                async with self._changed:
                    self._changed.notify_all()
        finally:
            async with self._changed:
                self._changed.notify_all()


class Orchestrator:
    def __init__(
        self,
        inventory: Inventory,
        workflow: Workflow,
        passwords: dict[str, SecretStr],
        state: RunState,
        options: RunOptions,
        progress: Progress,
    ) -> None:
        self.inventory = inventory
        self.workflow = workflow
        self.state = state
        self.options = options
        self.progress = progress
        self.saver = Saver(state, workflow.outdir)
        self.pool = WebsitePool(
            options.website_url, passwords, rate=options.rate, burst=options.burst
        )
        self.sites = {s.name: SiteRun(entry=s) for s in inventory.sites}
        self.coordinator = self.sites[inventory.coordinator.name]
        self.project: Project | None = None
        self.failures: dict[str, str] = {}
        self.run_started = time.monotonic()
        #: a state that has been through a run before: steps may have happened unrecorded
        self.resumed = any(r.started_at is not None for r in state.phases.values()) or any(
            site.phases for site in state.sites.values()
        )
        self.running_seen: float | None = None
        self.ended_seen: float | None = None
        self._all_ready = asyncio.Event()
        self._all_joined = asyncio.Event()
        self._prepared = asyncio.Event()
        self._uploads_done = asyncio.Event()
        self._finished = asyncio.Event()
        self._abort = asyncio.Event()

    # ----------------------------------------------------------------- helpers

    @property
    def deadline_at(self) -> float:
        return self.run_started + self.workflow.deadline_seconds

    def remaining(self) -> float:
        return max(1.0, self.deadline_at - time.monotonic())

    def web(self, site: SiteRun) -> WebsiteClient:
        return self.pool.client(site.entry.fc_user)

    @contextlib.asynccontextmanager
    async def phase(self, site: str | None, name: str) -> AsyncIterator[None]:
        """Time a phase, show it, checkpoint it; a failure is recorded with its one line."""
        self.state.start_phase(site, name)
        if site is not None:
            self.sites[site].current_phase = name
        self.progress.phase(site, name, "running")
        self.saver.mark()
        try:
            yield
        except asyncio.CancelledError:
            self.state.finish_phase(site, name, "failed", "interrupted")
            self.progress.phase(site, name, "failed", "interrupted")
            raise
        except Exception as exc:
            message = one_line(exc)
            self.state.finish_phase(site, name, "failed", message)
            self.progress.phase(site, name, "failed", message)
            self.saver.mark()
            raise
        self.state.finish_phase(site, name, "ok")
        self.progress.phase(site, name, "ok")
        # durable steps flush inside the phase; the end of a phase is a timing record
        self.saver.mark()

    def skip(self, site: str | None, name: str, why: str) -> None:
        """A phase a resume finds already done: shown, not repeated."""
        record = (
            self.state.phases.get(name) if site is None else self.state.site(site).phases.get(name)
        )
        if record is None or record.state != "ok":
            self.state.finish_phase(site, name, "skipped", why)
        self.progress.phase(site, name, "skipped", why)

    def first_failure(self) -> str:
        """What made the run fail first, for the steps that stop because of it."""
        where, what = next(iter(self.failures.items()), ("run", "stopped"))
        return what if what.startswith(f"site {where}") else f"{where} failed: {what}"

    def fail(self, site: str, exc: BaseException) -> None:
        self.failures.setdefault(site, one_line(exc))
        self._abort.set()

    async def until(self, event: asyncio.Event, what: str) -> None:
        """Wait for a barrier, or give up when the run is failing or the deadline passed."""
        waiter = asyncio.ensure_future(event.wait())
        aborter = asyncio.ensure_future(self._abort.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, aborter},
                timeout=self.deadline_at - time.monotonic(),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel()
            aborter.cancel()
        if waiter in done:
            return
        if aborter in done:
            raise RunFailed(f"stopped waiting for {what}: {self.first_failure()}")
        raise RunFailed(
            f"deadline of {self.workflow.deadline_seconds:.0f} s passed waiting for {what}"
        )

    # ----------------------------------------------------------------- the run

    async def run(self) -> RunResult:
        await self.saver.flush()  # the run can be resumed from its first step on
        try:
            site_tasks = [
                asyncio.create_task(self.site_pipeline(s), name=f"site-{s.entry.name}")
                for s in self.sites.values()
            ]
            project_task = asyncio.create_task(self.project_pipeline(), name="project")
            await asyncio.gather(project_task, *site_tasks, return_exceptions=True)
        except asyncio.CancelledError:
            # Ctrl-C: what happened so far goes to disk through the same writer, so no
            # older snapshot still being written can land after it; controllers keep
            # running, the project may still finish without us
            self.state.phase = "interrupted"
            await self.saver.flush()
            raise
        finally:
            await self.close()
        app_seconds = None
        if self.running_seen is not None and self.ended_seen is not None:
            app_seconds = self.ended_seen - self.running_seen
        result = RunResult(
            state=self.state,
            project=self.project,
            stats=self.pool.stats,
            app_seconds=app_seconds,
            wall_seconds=time.monotonic() - self.run_started,
            failures=dict(self.failures),
        )
        self.state.phase = "done" if result.ok else "failed"
        await self.saver.flush()
        return result

    async def close(self) -> None:
        await self.pool.aclose()
        for site in self.sites.values():
            if site.controller is not None:
                await site.controller.aclose()
            if site.conn is not None:
                with contextlib.suppress(Exception):
                    await site.conn.close()

    # ------------------------------------------------------- project (run-level)

    async def project_pipeline(self) -> None:
        """Project, tokens, prepare, watch: the coordinator's work on the website."""
        try:
            # no project before every site answered and every user logged in: a host or a
            # password that fails now must not leave a project behind
            await self.until(self._all_ready, "every site to connect and log in")
            await self.make_project()
            await self.make_tokens()
            await self.until(self._all_joined, "every participant to join")
            await self.prepare()
            try:
                await self.until(self._uploads_done, "every site to finalize")
            except RunFailed as exc:
                late = [n for n, s in self.state.sites.items() if not s.finalized]
                raise RunFailed(
                    f"project {self.state.project_id} stayed in prepare: "
                    f"{', '.join(late)} never finalized ({exc})"
                ) from None
            await self.watch()
        except Exception as exc:
            self.failures.setdefault("project", one_line(exc))
            self._abort.set()
        finally:
            self._finished.set()

    async def make_project(self) -> None:
        web = self.web(self.coordinator)
        record = self.state.phases.get("project")
        if self.state.project_id is not None and record is not None and record.state == "ok":
            self.skip(None, "project", f"project {self.state.project_id} exists")
            self.project = await web.get_project(self.state.project_id)
            return
        async with self.phase(None, "project"):
            if self.workflow.project_id is not None:
                project = await self.reuse_project(web, self.workflow.project_id)
            else:
                project = await self.create_project(web)
            self.state.record_project(project.id)
            await self.saver.flush()
            self.project = project

    async def create_project(self, web: WebsiteClient) -> Project:
        """A new project with the workflow's app, in two steps a resume can finish.

        The project id is recorded the moment it exists, and the intent before that, so a run
        cut off in between finds its project (by id, or by the run id in its name) and only
        sets the app it may still lack, instead of creating a second project.
        """
        assert self.workflow.app is not None
        name = project_name(self.state.run_id)
        project: Project | None = None
        if self.state.project_id is not None:
            project = await web.get_project(self.state.project_id)
        elif self.state.project_create_started_at is not None:
            for candidate in await web.list_projects():
                if candidate.name == name:
                    project = await web.get_project(candidate.id)
        if project is not None and project.status not in ("", "init"):
            return project  # its workflow is set: nothing left to do
        app = await web.app_by_slug(self.workflow.app)
        await web.add_to_library(app.id)
        if project is None:
            self.state.project_create_started_at = utcnow()
            await self.saver.flush()
            project = await web.create_project(
                name, description=f"fedstack run {self.state.run_id}"
            )
            self.state.record_project(project.id)
            await self.saver.flush()
        return await web.set_workflow(project.id, [app.id])

    async def reuse_project(self, web: WebsiteClient, project_id: int) -> Project:
        """An existing project: brought back to `ready` if an earlier run left it ended."""
        project = await web.get_project(project_id)
        if project.role not in (None, "coordinator"):
            raise RunFailed(
                f"project {project_id}: {self.coordinator.entry.fc_user} is not its coordinator"
            )
        if project.status in {str(s) for s in TERMINAL} or project.status == "prepare":
            project = await web.set_status(project_id, "ready")
        return project

    async def make_tokens(self) -> None:
        """One token per participant that is not yet a member, each saved before it is used."""
        assert self.project is not None
        web = self.web(self.coordinator)
        todo: list[SiteRun] = []
        for site in self.sites.values():
            if site is self.coordinator:
                continue
            record = self.state.site(site.entry.name)
            if record.joined or record.token is not None:
                site.token_ready.set()
            else:
                todo.append(site)
        if not todo:
            self.skip(None, "tokens", "every participant has a token")
            return
        async with self.phase(None, "tokens"):
            for site in todo:
                if self._abort.is_set():
                    raise RunFailed(f"stopped creating tokens: {self.first_failure()}")
                token = await web.create_token(self.project.id)
                self.state.site(site.entry.name).token = SecretStr(token.token)
                await self.saver.flush()
                site.token_ready.set()

    async def prepare(self) -> None:
        """The coordinator starts the project; a resume that did so already skips it."""
        assert self.project is not None
        record = self.state.phases.get("prepare")
        if record is not None and record.state in ("ok", "skipped"):
            self.skip(None, "prepare", "started already")
        else:
            async with self.phase(None, "prepare"):
                try:
                    self.project = await self.web(self.coordinator).set_status(
                        self.project.id, "prepare"
                    )
                except Conflict:
                    # killed after the request and before the checkpoint: fine if it took
                    project = await self.web(self.coordinator).get_project(self.project.id)
                    if project.status not in ("prepare", "running", "finished"):
                        raise
                    self.project = project
        self._prepared.set()

    async def watch(self) -> None:
        assert self.project is not None
        web = self.web(self.coordinator)
        pid = self.project.id

        def seen(project: Project, *_: object) -> None:
            if project.status == "running" and self.running_seen is None:
                self.running_seen = time.monotonic()
                self.progress.phase(None, "watch", "running", "project running")

        async with self.phase(None, "watch"):
            try:
                project = await self.first_of(
                    web.wait_for_status(pid, {"finished"}, deadline=self.remaining(), on_poll=seen),
                    self.liveness(),
                )
            except ProjectFailed as exc:
                self.ended_seen = time.monotonic()
                self.project = self.project.model_copy(update={"status": exc.status})
                raise
            except FcError:
                self.ended_seen = time.monotonic()
                raise
            self.ended_seen = time.monotonic()
            if self.running_seen is None:
                self.running_seen = self.ended_seen
            self.project = project

    @staticmethod
    async def first_of(status: Awaitable[Project], watchdog: Awaitable[None]) -> Project:
        """The project's end, unless the watchdog fails first (then its error)."""
        status_task = asyncio.ensure_future(status)
        watchdog_task = asyncio.ensure_future(watchdog)
        try:
            await asyncio.wait({status_task, watchdog_task}, return_when=asyncio.FIRST_COMPLETED)
            if watchdog_task.done():
                watchdog_task.result()  # raises what the watchdog found
            return await status_task
        finally:
            for task in (status_task, watchdog_task):
                task.cancel()
            await asyncio.gather(status_task, watchdog_task, return_exceptions=True)

    async def liveness(self) -> None:
        """Ping every controller while the project runs; raise when one stops answering.

        The platform may wait forever for a site whose controller died; this names it within
        seconds instead of at the run's deadline. Runs until cancelled.
        """
        misses = dict.fromkeys(self.sites, 0)
        while True:
            await asyncio.sleep(LIVENESS_PERIOD)  # a heartbeat period, not a wait for a state
            answers = await asyncio.gather(*(self._answers(s) for s in self.sites.values()))
            for site, ok in zip(self.sites.values(), answers, strict=True):
                name = site.entry.name
                misses[name] = 0 if ok else misses[name] + 1
                if misses[name] >= LIVENESS_MISSES:
                    message = (
                        f"site {name}: its controller stopped answering during the run "
                        f"({LIVENESS_MISSES} pings {LIVENESS_PERIOD:.0f} s apart)"
                    )
                    self.failures.setdefault(name, message)
                    raise RunFailed(f"project {self.state.project_id} cannot finish: {message}")

    @staticmethod
    async def _answers(site: SiteRun) -> bool:
        if site.controller is None:
            return False
        try:
            async with asyncio.timeout(LIVENESS_PERIOD):
                return await site.controller.ping()
        except TimeoutError:
            return False

    # ------------------------------------------------------------ per site

    async def site_pipeline(self, site: SiteRun) -> None:
        """One site from connect to stop; collection and stop run even after a failure."""
        name = site.entry.name
        record = self.state.site(name)
        try:
            async with asyncio.timeout(self.deadline_at - time.monotonic()):
                await self.connect(site)
                if not record.collect_done:
                    await self.controller_up(site)
                    await self.join(site)
                    await self.until(self._prepared, "the coordinator to start the project")
                    await self.upload(site)
                    await self.finalize(site)
        except TimeoutError:
            phase = site.current_phase or "start"
            message = f"deadline of {self.workflow.deadline_seconds:.0f} s passed"
            self.state.finish_phase(name, phase, "failed", message)
            self.fail(name, RunFailed(f"site {name}: {message} in phase {phase}"))
        except Exception as exc:
            self.fail(name, exc)
        finally:
            self._check_all_finalized()
        with contextlib.suppress(Exception):
            await self.until(self._finished, "the project to end")
        if site.controller is not None and self.project_ran():
            try:
                async with asyncio.timeout(COLLECT_DEADLINE):
                    await self.collect(site)
            except Exception as exc:
                self.failures.setdefault(name, one_line(exc) or "collect: deadline passed")
        try:
            async with asyncio.timeout(STOP_DEADLINE):
                await self.stop(site)
        except Exception as exc:
            self.failures.setdefault(name, one_line(exc) or "stop: deadline passed")

    def project_ran(self) -> bool:
        """Whether the project got as far as running: only then is there anything to fetch."""
        if self.running_seen is not None:
            return True
        return self.project is not None and self.project.status in RAN

    async def connect(self, site: SiteRun) -> None:
        """Reach the host and log its user in, so a bad host or password stops the run early."""
        async with self.phase(site.entry.name, "connect"):
            site.conn = open_site(site.entry, connect_timeout=self.options.connect_deadline)
            await asyncio.gather(site.conn.connect(), self.pool.logged_in(site.entry.fc_user))
            await self.check_host_files(site)
        site.ready = True
        if all(s.ready for s in self.sites.values()):
            self._all_ready.set()

    async def check_host_files(self, site: SiteRun) -> None:
        """Every file the workflow names on the site's host is there, readable, not a folder.

        Local files were checked with the workflow; these can only be checked on the host,
        and must be before the project exists.
        """
        assert site.conn is not None
        paths = [h.path for h in self.workflow.sites[site.entry.name].host]
        if not paths:
            return
        quoted = " ".join(shlex.quote(p) for p in paths)
        result = await site.conn.run(
            f'for f in {quoted}; do [ -r "$f" ] && [ ! -d "$f" ] || printf "%s\\n" "$f"; done',
            timeout=30.0,
        )
        missing = [line for line in result.stdout.splitlines() if line]
        if missing:
            raise RunFailed(
                f"site {site.entry.name}: not a readable file on the host: {', '.join(missing)}"
            )

    async def controller_up(self, site: SiteRun) -> None:
        """The controller started, unless it answers already (a resumed run)."""
        assert site.conn is not None
        async with self.phase(site.entry.name, "controller"):
            url = await site.conn.controller_url()
            site.controller = ControllerClient(url)
            if not await site.controller.ping():
                await site.conn.start_controller()
                await site.controller.wait_until_up(
                    self.options.controller_deadline, who=f"site {site.entry.name}"
                )

    async def write_site_info(self, site: SiteRun) -> None:
        """Tell the controller which site it serves: the body of `GET /api/site/`.

        Done just before the uploads rather than at controller start (the controller reads
        it when it needs it), so the coordinator's request for it does not queue in front
        of the project, its tokens and `prepare` in the coordinator's rate limit.
        """
        assert site.conn is not None
        data_dir = site.entry.controller.data_dir
        site.site_info = await self.web(site).ensure_site(site.entry.name)
        await site.conn.run(f"mkdir -p {shlex.quote(data_dir)}", timeout=30.0)
        await site.conn.write_file(
            posixpath.join(data_dir, "site_info.json"),
            site.site_info.model_dump_json(),
            mode=0o600,
        )

    async def join(self, site: SiteRun) -> None:
        name = site.entry.name
        record = self.state.site(name)
        if site is self.coordinator or record.joined:
            self.skip(name, "join", "coordinator" if site is self.coordinator else "joined")
            self._check_all_joined()
            return
        await self.until(site.token_ready, f"a project token for {name}")
        token = record.token
        assert token is not None and self.project is not None
        async with self.phase(name, "join"):
            web = self.web(site)
            try:
                await web.join(token.get_secret_value())
            except FcError as exc:
                # A run killed between join and checkpoint finds its token used: fine if the
                # user is a member now, which the project answering it proves.
                if not await self._is_member(web, self.project.id):
                    raise exc from None
            record.joined = True
            await self.saver.flush()
        self._check_all_joined()

    async def _is_member(self, web: WebsiteClient, project_id: int) -> bool:
        try:
            await web.get_project(project_id)
        except (NotFound, PermissionDenied):
            return False
        return True

    def _check_all_joined(self) -> None:
        if all(self.state.site(n).joined or s is self.coordinator for n, s in self.sites.items()):
            self._all_joined.set()

    async def upload(self, site: SiteRun) -> None:
        name = site.entry.name
        record = self.state.site(name)
        assert site.controller is not None and site.conn is not None and self.project is not None
        if not record.finalized and self.resumed:
            # killed between a finalize and its checkpoint: the project moving on proves it
            project = await self.web(site).get_project(self.project.id)
            record.finalized = project.status in RAN
        if record.finalized:
            self.skip(name, "upload", "finalized already")
            return
        plan = self.workflow.sites[name]
        pid = self.project.id
        async with self.phase(name, "upload"):
            await self.write_site_info(site)
            for local in plan.local:
                sent = await site.controller.upload(pid, local.path, local.name)
                record.uploaded[local.name] = UploadedFile(
                    name=local.name,
                    source=str(local.path),
                    location="local",
                    size=sent,
                    sha256=await asyncio.to_thread(sha256_file, local.path),
                )
            if self.workflow.config is not None:
                sent = await site.controller.upload(pid, self.workflow.config, CONFIG_NAME)
                record.uploaded[CONFIG_NAME] = UploadedFile(
                    name=CONFIG_NAME,
                    source=str(self.workflow.config),
                    location="local",
                    size=sent,
                    sha256=await asyncio.to_thread(sha256_file, self.workflow.config),
                )
            for host in plan.host:
                sent = await site.conn.upload_host_file(
                    site.entry.controller.port, pid, host.path, host.name
                )
                record.uploaded[host.name] = UploadedFile(
                    name=host.name, source=host.path, location="host", size=sent
                )

    async def finalize(self, site: SiteRun) -> None:
        name = site.entry.name
        record = self.state.site(name)
        if record.finalized:
            self.skip(name, "finalize", "finalized already")
            return
        assert site.controller is not None and self.project is not None
        async with self.phase(name, "finalize"):
            await site.controller.finalize(self.project.id)
            record.finalized = True
            await self.saver.flush()

    def _check_all_finalized(self) -> None:
        if all(s.finalized for s in self.state.sites.values()):
            self._uploads_done.set()

    async def collect(self, site: SiteRun) -> None:
        assert site.controller is not None and self.project is not None
        name = site.entry.name
        record = self.state.site(name)
        if record.collect_done:
            self.skip(name, "collect", "collected already")
            return

        async def keep(entry: CollectedFile) -> None:
            record.collected.append(entry)
            await self.saver.flush()

        async with self.phase(name, "collect"):
            try:
                await collect_site(
                    site.controller,
                    self.project.id,
                    self.workflow.outdir / self.state.run_id,
                    name,
                    list(record.collected),
                    keep,
                )
            except NoResults:
                # only a finished project owes every site a result; after a failure
                # elsewhere the logs are what there is, and this site did nothing wrong
                if self.project.status == "finished":
                    raise
            record.collect_done = True

    async def stop(self, site: SiteRun) -> None:
        if site.conn is None:
            return
        name = site.entry.name
        if self.options.keep_controllers:
            self.skip(name, "stop", "--keep-controllers")
            return
        if site.controller is not None:
            await site.controller.aclose()  # an open keep-alive would hold its shutdown up
        async with self.phase(name, "stop"):
            await site.conn.stop_controller()


def one_line(exc: BaseException) -> str:
    """An exception as the one line a user reads: its message, whitespace folded."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, TransportError | FcError | RunFailed):
        return text
    return f"{type(exc).__name__}: {text}"
