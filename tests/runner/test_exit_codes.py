"""The runner's exit codes, one by one, each from a real `python -m runner` process.

Scripts and CI branch on these (README "Exit codes", runner.errors): 0 completed, 2 bad
input, 7 the deadline passed, 10 the project failed, 11 sites failed, 130 interrupted. Two
local sites against the emulated website, with its fault knobs (fcapi.emulator.faults) making
each outcome happen for real.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.errors import (
    EXIT_BAD_INPUT,
    EXIT_DEADLINE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROJECT_FAILED,
    EXIT_SITES_FAILED,
)
from tests.runner.federation import Federation, local_federation

RUN_BOUND = 120.0


async def set_faults(fed: Federation, **knobs: Any) -> None:
    async with httpx.AsyncClient(base_url=fed.website_url) as client:
        (await client.put("/_emulator/faults", json=knobs)).raise_for_status()


async def run(argv: list[str], *, interrupt_on: str | None = None) -> tuple[int, str]:
    """The runner as a process: its exit code and all it said (stderr, then stdout).

    With `interrupt_on`, SIGINT (Ctrl-C) once a stderr line ends so."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(os.environ)
    )
    assert proc.stderr is not None and proc.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(RUN_BOUND):
            while line := (await proc.stderr.readline()).decode():
                seen.append(line)
                if interrupt_on is not None and line.rstrip().endswith(interrupt_on):
                    proc.send_signal(signal.SIGINT)
                    interrupt_on = None
            out = (await proc.stdout.read()).decode()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return code, "".join(seen) + out  # the live lines, then the summary


@pytest.mark.parametrize(
    ("faults", "deadline", "code", "says"),
    [
        ({}, "60s", EXIT_OK, "completed"),
        ({"app_fail": "site2"}, "60s", EXIT_PROJECT_FAILED, "its app failed"),
        ({"die_mid_run": "site2"}, "60s", EXIT_SITES_FAILED, "site site2:"),
        # the engine's liveness names a hung app before the deadline: that is a site failing
        ({"app_hang": "site2"}, "20s", EXIT_SITES_FAILED, "did nothing in step 1"),
    ],
    ids=["ok", "project-failed", "sites-failed", "app-hung"],
)
async def test_a_runs_outcome_is_its_exit_code(
    tmp_path: Path, faults: dict[str, Any], deadline: str, code: int, says: str
):
    async with local_federation(tmp_path, sites=2, deadline=deadline) as fed:
        await set_faults(fed, **faults)
        got, err = await run(fed.runner_argv())
    assert got == code, err[-3000:]
    assert says in err


async def test_a_run_past_its_deadline_is_exit_7(tmp_path: Path):
    """site2's data is a pipe nothing writes: its upload never ends, the deadline passes."""
    async with local_federation(tmp_path, sites=2, deadline="8s") as fed:
        fifo = Path(fed.inventory.site("site2").workdir) / "stuck.csv"
        os.mkfifo(fifo)
        text = fed.workflow_file.read_text()
        local = 'files = [{ path = "input/site2.csv", as = "data.csv" }]'
        assert local in text
        stuck = f'host_files = [{{ path = "{fifo}", as = "data.csv" }}]'
        fed.workflow_file.write_text(text.replace(local, stuck))
        got, err = await run(fed.runner_argv())
    assert got == EXIT_DEADLINE, err[-3000:]
    assert "deadline of 8 s passed" in err


async def test_bad_input_is_exit_2_and_an_interrupted_run_130(tmp_path: Path):
    async with local_federation(tmp_path, sites=2) as fed:
        argv = fed.runner_argv()
        env_file = Path(argv[argv.index("--env-file") + 1])
        good = env_file.read_text()
        env_file.write_text(good.replace("=", "=wrong", 1))
        got, err = await run(argv)
        assert got == EXIT_BAD_INPUT and "FeatureCloud user" in err, err
        env_file.write_text(good)
        await set_faults(fed, app_hang="site2")  # a run still under way when Ctrl-C comes
        got, err = await run(argv, interrupt_on="watch running: project running")
    assert got == EXIT_INTERRUPTED, err[-3000:]
    assert "--resume" in err
