"""`python -m fcapi.emulator test APP_DIR --site DIR ...`: an engine app across sites, offline.

What `featurecloud test start` does with Docker and a controller image, without either and
without a website account: every site's app runs as its process (`process`), driven by the
controller's own loop (`driver`), and the sites' data travels through an in-memory hub that
routes as the website's relay does. Each DIR holds a site's input files and config.yml; the
first is the coordinator. It prints each site's outcome and output files and exits non-zero
when any site fails or the deadline passes.

With a `Shuffle` the hub holds each round's pieces for the coordinator until every
participant's is in, then hands them over in an order drawn from a seed: the platform delivers
in arrival order, so an app's result may depend on it (a float sum's last digit does), and two
runs (an engine app and its in-process twin, say) fed one seed see one and the same order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from fcapi.emulator.engine import driver
from fcapi.emulator.engine.folders import check_folder
from fcapi.emulator.engine.venvs import ensure_venv, venv_python
from fcapi.emulator.run_errors import AppFailed, Stopped

Message = tuple[str, str, bytes]
Inbox = asyncio.Queue[Message]
#: starts one site's app on (input dir, output dir, where its output lines go), stops it after
Launch = Callable[
    [Path, Path, Callable[[str], None]], contextlib.AbstractAsyncContextManager[driver.App]
]


@dataclass
class Shuffle:
    """Each round's pieces for the coordinator (by memo, default route), held until every
    participant's is in and the coordinator has been set up for `settle` seconds (its own piece
    is in by then), then delivered in an order drawn from `seed` and the memo."""

    seed: str
    settle: float = 3.0
    held: dict[str, list[Message]] = field(default_factory=dict)
    #: when the coordinator's controller first asked for mail (right after its app's setup)
    since: float | None = None

    def order(self, memo: str, pieces: list[Message]) -> list[Message]:
        ordered = sorted(pieces, key=lambda m: m[0])
        random.Random(f"{self.seed}/{memo}").shuffle(ordered)
        return ordered

    def ready(self, participants: int) -> list[Message]:
        """The held rounds that may go now, each in its drawn order."""
        now = time.monotonic()
        self.since = now if self.since is None else self.since
        if now - self.since < self.settle:
            return []
        done = [memo for memo, got in self.held.items() if len(got) >= participants]
        return [m for memo in done for m in self.order(memo, self.held.pop(memo))]


@dataclass
class Hub:
    """Every site's inbox; routes as the website does (coordinator -> all others)."""

    clients: list[str]
    shuffle: Shuffle | None = None
    inboxes: dict[str, Inbox] = field(default_factory=dict)
    #: set once a site failed: the others stop, as a project in error stops every site
    ended: str | None = None

    def __post_init__(self) -> None:
        self.inboxes = {c: asyncio.Queue() for c in self.clients}

    def relay(self, me: str) -> HubRelay:
        return HubRelay(self, me)

    def put(self, sender: str, target: str, memo: str, data: bytes, routed: bool) -> None:
        """Into the target's inbox, or held for the shuffle (a routed piece for the
        coordinator)."""
        if self.shuffle is not None and routed and target == self.clients[0]:
            self.shuffle.held.setdefault(memo, []).append((sender, memo, data))
        else:
            self.inboxes[target].put_nowait((sender, memo, data))


@dataclass
class HubRelay:
    hub: Hub
    me: str

    async def send(
        self, pid: int, run: int, step: int, data: bytes, destination: str, memo: str
    ) -> None:
        coordinator = self.hub.clients[0]
        if destination:
            if destination not in self.hub.inboxes:
                raise AppFailed(f"destination {destination!r} is not a client of this test")
            targets = [destination]
        elif self.me == coordinator:
            targets = [c for c in self.hub.clients if c != coordinator]
        else:
            targets = [coordinator]
        for target in targets:
            self.hub.put(self.me, target, memo, data, routed=not destination)

    async def receive(
        self, pid: int, run: int, step: int, wait: float
    ) -> tuple[str, int, list[tuple[str, str, bytes]]]:
        inbox = self.hub.inboxes[self.me]
        msgs: list[tuple[str, str, bytes]] = []
        if self.hub.ended is not None:
            return self.hub.ended, run, msgs
        shuffle = self.hub.shuffle
        if shuffle is not None and self.me == self.hub.clients[0]:
            for message in shuffle.ready(len(self.hub.clients) - 1):
                inbox.put_nowait(message)
        try:
            msgs.append(await asyncio.wait_for(inbox.get(), wait))
        except TimeoutError:
            return "running", run, msgs
        while not inbox.empty():
            msgs.append(inbox.get_nowait())
        return "running", run, msgs


@dataclass(frozen=True)
class Limits:
    """The test's deadline (monotonic), its length in seconds, and the status poll interval."""

    deadline: float
    seconds: float
    poll: float


@dataclass
class Outcome:
    site: str
    client: str
    coordinator: bool
    state: str
    message: str
    output_dir: Path
    log: Path

    def files(self) -> list[str]:
        return sorted(p.name for p in self.output_dir.iterdir() if p.is_file())

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "client": self.client,
            "coordinator": self.coordinator,
            "state": self.state,
            "message": self.message,
            "output_dir": str(self.output_dir),
            "files": self.files(),
            "log": str(self.log),
        }


async def run_site(
    launch: Launch, site: Path, index: int, hub: Hub, work: Path, limits: Limits
) -> Outcome:
    client = hub.clients[index]
    out, log = work / f"site{index + 1}" / "output", work / f"site{index + 1}" / "app.log"
    out.mkdir(parents=True)
    outcome = Outcome(str(site), client, index == 0, "finished", "", out, log)

    def write(level: str, line: str) -> None:
        with log.open("a") as f:
            f.write(f"[{level}] {line}\n")

    step = driver.StepRun(
        relay=hub.relay(client),
        pid=0,
        run=1,
        step=1,
        me=client,
        coordinator=hub.clients[0],
        clients=list(hub.clients),
        site_name=f"site{index + 1}",
        deadline=limits.deadline,
        run_timeout=limits.seconds,
        log=write,
        poll=limits.poll,
    )
    try:
        async with launch(site, out, functools.partial(write, "app")) as app:
            await driver.drive(app, step)
    except Stopped:
        outcome.state, outcome.message = "stopped", "another site failed"
    except TimeoutError as exc:
        outcome.state, outcome.message = "deadline", str(exc)
        hub.ended = "error"
    except Exception as exc:
        outcome.state, outcome.message = "error", str(exc)
        hub.ended = "error"
    return outcome


async def run_test(
    app_dir: Path,
    sites: list[Path],
    *,
    seconds: float,
    poll: float,
    outdir: Path | None,
    shuffle: Shuffle | None = None,
) -> list[Outcome]:
    """The engine app of `app_dir` at every site, as app processes."""
    app_dir = check_folder(app_dir)
    work = _workdir(sites, outdir)
    venv = await asyncio.to_thread(ensure_venv, app_dir, log=work / "venv.log")
    launch = functools.partial(driver.engine_app, app_dir, venv_python(venv))
    return await run_sites(launch, sites, work, seconds=seconds, poll=poll, shuffle=shuffle)


async def run_sites(
    launch: Launch,
    sites: list[Path],
    work: Path,
    *,
    seconds: float,
    poll: float,
    shuffle: Shuffle | None = None,
) -> list[Outcome]:
    """Every site's app (as `launch` starts it) through one hub, the first the coordinator."""
    hub = Hub([str(i + 1) for i in range(len(sites))], shuffle)
    limits = Limits(time.monotonic() + seconds, seconds, poll)
    return list(
        await asyncio.gather(
            *(
                run_site(launch, site.resolve(), i, hub, work, limits)
                for i, site in enumerate(sites)
            )
        )
    )


def _workdir(sites: list[Path], outdir: Path | None) -> Path:
    missing = [str(s) for s in sites if not s.is_dir()]
    if missing:
        raise ValueError(f"--site {missing[0]} is not a folder")
    work = outdir or Path(tempfile.mkdtemp(prefix="fcapi-test-"))
    work.mkdir(parents=True, exist_ok=True)
    return work


def report(outcomes: list[Outcome], as_json: bool, out: TextIO = sys.stdout) -> int:
    """Print the outcomes; the exit status (0 only when every site finished)."""
    ok = all(o.state == "finished" for o in outcomes)
    if as_json:
        doc = {"ok": ok, "sites": [o.to_json() for o in outcomes]}
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        for o in outcomes:
            role = "coordinator" if o.coordinator else "participant"
            what = f": {o.message}" if o.message else ""
            out.write(f"{o.site} ({role}, client {o.client}): {o.state}{what}\n")
            for name in o.files():
                out.write(f"  {o.output_dir / name}\n")
            out.write(f"  log: {o.log}\n")
    return 0 if ok else 1
