"""Site locks: a cell waits for sites another cell holds, and gets exactly a resumed run's."""

from __future__ import annotations

import asyncio

import pytest

from runner.sweep.locks import SitePool


async def test_a_cell_waits_until_the_sites_it_needs_are_given_back() -> None:
    pool = SitePool(["s1", "s2", "s3"])
    first = await pool.take(2)
    assert first == ["s1", "s2"]
    second = asyncio.create_task(pool.take(2))
    await asyncio.sleep(0.05)
    assert not second.done()  # only s3 is free
    await pool.give_back(first)
    assert sorted(await asyncio.wait_for(second, 1)) == ["s1", "s2"]


async def test_a_resumed_run_gets_its_own_sites_in_its_order() -> None:
    pool = SitePool(["s1", "s2", "s3"])
    assert await pool.take(2, ["s3", "s1"]) == ["s3", "s1"]
    with pytest.raises(ValueError, match="not in the pool"):
        await pool.take(1, ["s9"])
