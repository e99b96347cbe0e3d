"""Controller pings while the project runs, so that a dead site is named within seconds.

The platform may wait forever for a site whose controller died; without this the run would
only notice at its deadline, an hour later, with no site named.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable

from fcapi.models import Project
from runner.engine.context import SiteRun
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
