"""What every phase of a run shares: the state, the clients, the barriers, and how a phase is kept.

The run is a pipeline per site (runner.engine.site_phases) and one for the project
(runner.engine.project_phases), with three barriers where the platform needs every site at
once. Both pipelines work on one `RunContext`, so a phase is a plain function of it: it times
itself with `phase()`, checkpoints what it changed through the saver, and waits for a barrier
with `until()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pydantic import SecretStr

from fcapi.controller import ControllerClient
from fcapi.errors import FcError, one_line
from fcapi.models import Project, Site
from fcapi.website import WebsiteClient, WebsitePool
from fedinfra.inventory import Inventory, SiteEntry
from runner.engine.carry import Carried
from runner.engine.checkpoint import RunState
from runner.engine.saver import Saver
from runner.errors import RunFailed
from runner.outputs.progress import Progress
from runner.plan.workflow import Workflow
from runner.sites.base import SiteConnection, SiteError

#: how long a site may take to accept SSH (a VM still booting refuses for a while)
CONNECT_DEADLINE = 120.0
#: how long a controller may take to answer /ping/ after its start command returned
CONTROLLER_DEADLINE = 180.0
#: how long a failing run may spend naming the failing site and stopping its project, after
#: its deadline too: the website may be what failed, and the run must still end soon
SHUTDOWN_DEADLINE = 10.0
#: statuses of a project that ran (so its controllers have results or logs)
RAN = frozenset({"running", "finished", "error", "failed", "stopped"})


@dataclass
class RunOptions:
    website_url: str
    keep_controllers: bool = False
    #: leave a failing run's project `running` on the platform (to look at it there)
    keep_project_running: bool = False
    connect_deadline: float = CONNECT_DEADLINE
    controller_deadline: float = CONTROLLER_DEADLINE
    rate: float = 3.0
    burst: int = 3
    #: what an earlier run of the same series learnt and wrote (runner.engine.carry)
    carried: Carried | None = None

    def website_pool(self, passwords: dict[str, SecretStr]) -> WebsitePool:
        """The run's one pool of website clients: one login and one rate bucket per user."""
        return WebsitePool(self.website_url, passwords, rate=self.rate, burst=self.burst)


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


class RunContext:
    """One run under way: inputs, clients, per-site holdings, barriers and failures."""

    def __init__(
        self,
        inventory: Inventory,
        workflow: Workflow,
        credentials: dict[str, SecretStr] | WebsitePool,
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
        self.pool = (
            credentials
            if isinstance(credentials, WebsitePool)
            else options.website_pool(credentials)
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
        self.all_ready = asyncio.Event()
        self.all_joined = asyncio.Event()
        self.prepared = asyncio.Event()
        self.uploads_done = asyncio.Event()
        self.finished = asyncio.Event()
        self.abort = asyncio.Event()

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
            message = failure_line(exc)
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
        """Record a site's failure, named by site and phase, and stop the run's waits."""
        line = failure_line(exc)
        if not line.startswith(f"site {site}"):
            line = f"site {site}: {self.sites[site].current_phase or 'start'}: {line}"
        self.failures.setdefault(site, line)
        self.abort.set()

    async def until(self, event: asyncio.Event, what: str) -> None:
        """Wait for a barrier, or give up when the run is failing or the deadline passed."""
        waiter = asyncio.ensure_future(event.wait())
        aborter = asyncio.ensure_future(self.abort.wait())
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

    def project_ran(self) -> bool:
        """Whether the project got as far as running: only then is there anything to fetch."""
        if self.running_seen is not None:
            return True
        return self.project is not None and self.project.status in RAN

    def check_all_joined(self) -> None:
        if all(self.state.site(n).joined or s is self.coordinator for n, s in self.sites.items()):
            self.all_joined.set()

    def check_all_finalized(self) -> None:
        if all(s.finalized for s in self.state.sites.values()):
            self.uploads_done.set()


def failure_line(exc: BaseException) -> str:
    """An exception as the one line a user reads: its message, whitespace folded.

    The runner's own run and site errors and fcapi's already read as a sentence naming the
    site or the endpoint; anything else keeps its type name, which says what kind of bug it is.
    """
    text = one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, SiteError | FcError | RunFailed):
        return text
    return f"{type(exc).__name__}: {text}"
