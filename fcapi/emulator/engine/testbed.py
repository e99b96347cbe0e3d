"""`python -m fcapi.emulator test APP_DIR --site DIR ...`: an engine app across sites, offline.

What `featurecloud test start` does with Docker and a controller image, without either and
without a website account: every site's app runs as its process (`process`), driven by the
controller's own loop (`driver`), and the sites' data travels through an in-memory hub that
routes as the website's relay does. Each DIR holds a site's input files and config.yml; the
first is the coordinator. It prints each site's outcome and output files and exits non-zero
when any site fails or the deadline passes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from fcapi.emulator.engine import driver
from fcapi.emulator.engine.folders import check_folder
from fcapi.emulator.engine.process import AppProcess
from fcapi.emulator.engine.venvs import ensure_venv, venv_python
from fcapi.emulator.run_errors import AppFailed, Stopped

Inbox = asyncio.Queue[tuple[str, str, bytes]]


@dataclass
class Hub:
    """Every site's inbox; routes as the website does (coordinator -> all others)."""

    clients: list[str]
    inboxes: dict[str, Inbox] = field(default_factory=dict)
    #: set once a site failed: the others stop, as a project in error stops every site
    ended: str | None = None

    def __post_init__(self) -> None:
        self.inboxes = {c: asyncio.Queue() for c in self.clients}

    def relay(self, me: str) -> HubRelay:
        return HubRelay(self, me)


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
            self.hub.inboxes[target].put_nowait((self.me, memo, data))

    async def receive(
        self, pid: int, run: int, step: int, wait: float
    ) -> tuple[str, int, list[tuple[str, str, bytes]]]:
        inbox = self.hub.inboxes[self.me]
        msgs: list[tuple[str, str, bytes]] = []
        if self.hub.ended is not None:
            return self.hub.ended, run, msgs
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
    app_dir: Path, python: Path, site: Path, index: int, hub: Hub, work: Path, limits: Limits
) -> Outcome:
    client = hub.clients[index]
    out, log = work / f"site{index + 1}" / "output", work / f"site{index + 1}" / "app.log"
    out.mkdir(parents=True)
    outcome = Outcome(str(site), client, index == 0, "finished", "", out, log)

    def write(level: str, line: str) -> None:
        with log.open("a") as f:
            f.write(f"[{level}] {line}\n")

    app = AppProcess(app_dir, python, site, out, lambda line: write("app", line))
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
        await app.start()
        await driver.drive(app, step)
    except Stopped:
        outcome.state, outcome.message = "stopped", "another site failed"
    except TimeoutError as exc:
        outcome.state, outcome.message = "deadline", str(exc)
        hub.ended = "error"
    except Exception as exc:
        outcome.state, outcome.message = "error", str(exc)
        hub.ended = "error"
    finally:
        await app.stop()
    return outcome


async def run_test(
    app_dir: Path, sites: list[Path], *, seconds: float, poll: float, outdir: Path | None
) -> list[Outcome]:
    app_dir = check_folder(app_dir)
    missing = [str(s) for s in sites if not s.is_dir()]
    if missing:
        raise ValueError(f"--site {missing[0]} is not a folder")
    work = outdir or Path(tempfile.mkdtemp(prefix="fcapi-test-"))
    work.mkdir(parents=True, exist_ok=True)
    venv = await asyncio.to_thread(ensure_venv, app_dir, log=work / "venv.log")
    hub = Hub([str(i + 1) for i in range(len(sites))])
    limits = Limits(time.monotonic() + seconds, seconds, poll)
    return list(
        await asyncio.gather(
            *(
                run_site(app_dir, venv_python(venv), site.resolve(), i, hub, work, limits)
                for i, site in enumerate(sites)
            )
        )
    )


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
