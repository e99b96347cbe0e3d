"""The controller's `/logs/` carries UTC times with a zone, as the platform's do."""

from __future__ import annotations

import datetime as dt

import httpx


async def test_log_times_are_utc_with_a_zone(emulator_controllers):
    (ctl,) = await emulator_controllers(1)
    async with httpx.AsyncClient(base_url=ctl.url) as c:
        entries = (await c.get("/logs/")).json()
    stamp = entries[0]["time"]
    assert stamp.endswith("Z")
    when = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 60
