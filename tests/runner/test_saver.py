"""The checkpoint writer: every flush is on disk when it returns, however many arrive at once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from runner.engine import checkpoint as cp
from runner.engine.saver import Saver


def make_state(sites: int) -> cp.RunState:
    return cp.new_state(
        cp.new_run_id(),
        workflow_digest="sha256:w",
        inventory_digest="sha256:i",
        sites=[f"site{i}" for i in range(sites)],
    )


async def test_each_flush_returns_with_its_own_change_on_disk(tmp_path: Path):
    state = make_state(50)
    saver = Saver(state, tmp_path)
    path = cp.state_path(tmp_path, state.run_id)

    async def change(i: int) -> None:
        await asyncio.sleep(0)
        state.site(f"site{i}").joined = True
        await saver.flush()
        on_disk = json.loads(path.read_text())
        assert on_disk["sites"][f"site{i}"]["joined"] is True

    await asyncio.gather(*(change(i) for i in range(50)))
    assert path.stat().st_mode & 0o777 == 0o600
    assert all(s["joined"] for s in json.loads(path.read_text())["sites"].values())


async def test_a_failed_write_reaches_the_caller(tmp_path: Path):
    state = make_state(1)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the run folder should be")
    saver = Saver(state, blocker)
    with pytest.raises(OSError):
        await saver.flush()
