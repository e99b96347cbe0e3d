"""Which site is to blame: controller pings while the project runs, and its logs after.

The platform may wait forever for a site whose controller died; without the pings the run
would only notice at its deadline, an hour later, with no site named. A project that ends in
`error` or stays `running` says nothing of the site either: its controllers' logs do.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Iterable

from fcapi.errors import FcError, one_line
from fcapi.models import LogEntry, Project
from runner.engine.context import RunContext, SiteRun
from runner.errors import RunFailed

#: while the project runs, every controller is pinged this often; this many misses in a row
#: and its site is called dead
LIVENESS_PERIOD = 2.0
LIVENESS_MISSES = 3


async def watch_controllers(
    sites: Iterable[SiteRun], project_id: int | None, failures: dict[str, str]
) -> None:
    """Ping every controller; when one misses too often, record its site and raise.

    The site's failure goes into `failures` before the project's, so that the report says
    which site made the project fail. Runs until cancelled.
    """
    watched = list(sites)
    misses = {site.entry.name: 0 for site in watched}
    while True:
        await asyncio.sleep(LIVENESS_PERIOD)  # a heartbeat period, not a wait for a state
        answers = await asyncio.gather(*(_answers(s) for s in watched))
        for site, ok in zip(watched, answers, strict=True):
            name = site.entry.name
            misses[name] = 0 if ok else misses[name] + 1
            if misses[name] >= LIVENESS_MISSES:
                message = (
                    f"site {name}: its controller stopped answering during the run "
                    f"({LIVENESS_MISSES} pings {LIVENESS_PERIOD:.0f} s apart)"
                )
                failures.setdefault(name, message)
                raise RunFailed(f"project {project_id} cannot finish: {message}")


async def _answers(site: SiteRun) -> bool:
    if site.controller is None:
        return False
    try:
        async with asyncio.timeout(LIVENESS_PERIOD):
            return await site.controller.ping()
    except TimeoutError:
        return False


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


#: what an emulated controller logs as its app's traffic; a site with none in a hung step
#: is the one its peers wait for
_TRAFFIC = re.compile(r"^(sent|received) \d+ bytes")
_STEP = re.compile(r"^step (\d+):")
#: an error that only says the run is over (another site ended it)
_ENDED = re.compile(r"not in progress|is not running")


async def name_failing_sites(run: RunContext, pid: int, *, hung: bool) -> dict[str, str]:
    """Which sites made project `pid` fail or hang, by their controllers' logs (`GET /logs/`).

    The platform says only that the project ended in `error` or stayed `running`; the site
    is in the logs: an app failure is an `error` line at its controller, a hung app is one
    that neither sent nor received anything in the step under way (its peers are waiting for
    it), or else, when every site's app had traffic, one that sent nothing.
    """
    sites = [s for s in run.sites.values() if s.controller is not None]
    logs = await asyncio.gather(*(_run_log(s, pid) for s in sites))
    by_site = {s.entry.name: e for s, e in zip(sites, logs, strict=True) if e}
    return _quiet_sites(by_site) if hung else _failed_sites(by_site)


def _failed_sites(logs: dict[str, list[LogEntry]]) -> dict[str, str]:
    """The sites whose controller logged an error, leaving out errors that only follow from
    the run having ended (a peer's app sending into a run that another site failed)."""
    errors = {
        n: [e.message for e in entries if e.level in ("error", "fatal")]
        for n, entries in logs.items()
    }
    causes = {n: [m for m in found if not _ENDED.search(m)] for n, found in errors.items()}
    blamed = {n: m for n, m in causes.items() if m} or {n: m for n, m in errors.items() if m}
    return {n: f"its app failed ({one_line(m[0])[:300]})" for n, m in blamed.items()}


async def _run_log(site: SiteRun, pid: int) -> list[LogEntry]:
    """The site's controller log since project `pid`'s latest run began ([] if unreadable)."""
    assert site.controller is not None
    try:
        entries = await site.controller.logs()
    except FcError:
        return []
    start = f"project {pid} run "
    begun = [i for i, e in enumerate(entries) if e.message.startswith(start)]
    return entries[begun[-1] :] if begun else []


def _quiet_sites(logs: dict[str, list[LogEntry]]) -> dict[str, str]:
    """The sites of a hung run whose apps did the least: no traffic at all, else none sent."""

    def step(entries: list[LogEntry]) -> str:
        steps = [m.group(1) for e in entries if (m := _STEP.match(e.message))]
        return f"step {steps[-1]}" if steps else "its first step"

    def said(entries: list[LogEntry], *words: str) -> bool:
        return any((m := _TRAFFIC.match(e.message)) and m.group(1) in words for e in entries)

    silent = {n: e for n, e in logs.items() if not said(e, "sent", "received")}
    if silent:
        return {
            n: f"its app did nothing in {step(e)} (no message sent or received), "
            "so the other sites wait for it"
            for n, e in silent.items()
        }
    mute = {n: e for n, e in logs.items() if not said(e, "sent")}
    return {
        n: f"its app sent nothing in {step(e)}, so the other sites wait for it"
        for n, e in mute.items()
    }
