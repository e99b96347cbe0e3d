"""The mean workflow under every fault the emulator can inject, a controller kill and website
kills: each run completes, or fails naming the site and the phase, with no project left
running and the healthy sites' logs kept; a run cut off by an outage resumes to the answer.

Three local sites (controller processes on this machine) against the emulated website, in
process for the fault knobs and as a process where the website itself is killed or paused.
"""

from __future__ import annotations

import asyncio
import io
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fcapi.emulator.serve import RunningServer, running_site
from fcapi.errors import ExitCode
from fcapi.website import WebsiteClient
from runner.api import Outcome, execute, start_state
from runner.demo import free_ports
from runner.demo_data import CHECK_MEAN
from runner.engine.liveness import LIVENESS_MISSES, LIVENESS_PERIOD
from runner.engine.orchestrate import Orchestrator, RunOptions
from runner.errors import EXIT_SITES_FAILED
from runner.outputs.progress import make_progress
from runner.sites.shell import emulator_pid_file
from tests.runner.federation import Federation, build, outputs

#: no run of this suite may take longer than this, whatever goes wrong
RUN_BOUND = 90.0


@pytest.fixture
async def website() -> AsyncIterator[RunningServer]:
    async with running_site() as web:
        yield web


class WebsiteProcess:
    """`python -m fcapi.emulator site` on a fixed port with a state file: killed, paused and
    started again where it was, as a website restarting or stalling would be."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.popen: subprocess.Popen[str] | None = None

    def start(self) -> None:
        argv = ["site", "--port", str(self.port), "--state", str(self.state)]
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "fcapi.emulator", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], 20)
        assert ready, "the website did not start within 20 s"
        assert "listening" in self.popen.stdout.readline()

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait(10)

    def signal(self, sig: signal.Signals) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)
            self.kill()


@pytest.fixture
def website_process(tmp_path: Path) -> Iterator[WebsiteProcess]:
    web = WebsiteProcess(tmp_path / "website-state.json")
    web.start()
    try:
        yield web
    finally:
        web.stop()


async def run(fed: Federation, resume: str | None = None) -> Outcome:
    return await asyncio.wait_for(
        execute(
            fed.inventory, fed.workflow(), fed.passwords, website_url=fed.website_url, resume=resume
        ),
        RUN_BOUND,
    )


async def set_faults(url: str, **knobs: Any) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        (await client.put("/_emulator/faults", json=knobs)).raise_for_status()


async def project_statuses(fed: Federation) -> list[str]:
    user = fed.inventory.coordinator.fc_user
    async with WebsiteClient(fed.website_url, user, fed.passwords[user]) as web:
        return [p.status for p in await web.list_projects()]


async def wait_for_status(fed: Federation, wanted: str, within: float = 30.0) -> None:
    """Until the coordinator's project has status `wanted` (for a fault to strike then)."""
    deadline = time.monotonic() + within
    while wanted not in await project_statuses(fed):
        assert time.monotonic() < deadline, f"no project reached {wanted!r} in {within} s"
        await asyncio.sleep(0.05)


def means(outcome: Outcome) -> dict[str, str]:
    return {s: t.split()[-1] for s, t in outputs(outcome.run_dir, "output.csv").items()}


def assert_completed(outcome: Outcome) -> None:
    assert outcome.code == 0, outcome.summary["failures"]
    assert outcome.summary["status"] == "completed"
    assert means(outcome) == {"site1": CHECK_MEAN, "site2": CHECK_MEAN, "site3": CHECK_MEAN}


async def assert_failed_cleanly(
    fed: Federation, outcome: Outcome, site: str, says: str, healthy: list[str]
) -> None:
    """Failed, naming `site` and what it did; nothing left running; every log the healthy
    sites' controllers wrote is in the run folder."""
    failures = outcome.summary["failures"]
    assert isinstance(failures, dict)
    assert outcome.code != 0
    assert failures[site].startswith(f"site {site}:") and says in failures[site], failures
    assert not any(failures.get(h) for h in healthy), failures
    assert "running" not in await project_statuses(fed)
    for name in healthy:
        data_dir = Path(fed.inventory.site(name).controller.data_dir)
        kept = {p.name for p in data_dir.glob("workflows/Project_*/Run_*/log_*.txt")}
        got = list(outcome.run_dir.glob(f"sites/{name}/run*/log_step*.txt"))
        assert len(got) == len(kept), (name, kept, got)


@pytest.mark.parametrize(
    "knobs",
    [
        {"latency_ms": 80},
        {"error_rate": 0.2, "seed": 11},
        {"burst_429": 4, "retry_after": 1},
        {"access_lifetime": 1.5},
    ],
    ids=["latency", "5xx-20pct", "429-burst", "short-access-tokens"],
)
async def test_the_run_completes_under_website_faults(
    website: RunningServer, tmp_path: Path, knobs: dict[str, Any]
):
    fed = await build(tmp_path, website.url, local_sites=3, deadline="60s")
    await set_faults(website.url, **knobs)
    outcome = await run(fed)
    await set_faults(website.url, error_rate=0, latency_ms=0, burst_429=0)
    assert_completed(outcome)
    assert await project_statuses(fed) == ["finished"]


async def test_an_app_failure_names_its_site_and_step(website: RunningServer, tmp_path: Path):
    fed = await build(tmp_path, website.url, local_sites=3, deadline="60s")
    await set_faults(website.url, app_fail="site2")
    outcome = await run(fed)
    assert outcome.code == ExitCode.PROJECT_FAILED
    await assert_failed_cleanly(fed, outcome, "site2", "its app failed", ["site1", "site3"])
    failures = outcome.summary["failures"]
    assert isinstance(failures, dict)
    assert "step 1" in failures["site2"] and "watch" in failures["site2"]
    assert await project_statuses(fed) == ["error"]


async def test_a_hung_app_is_named_and_its_project_stopped(website: RunningServer, tmp_path: Path):
    fed = await build(tmp_path, website.url, local_sites=3, deadline="12s")
    await set_faults(website.url, app_hang="site2")
    started = time.monotonic()
    outcome = await run(fed)
    assert time.monotonic() - started < 12 + 20
    assert outcome.code == EXIT_SITES_FAILED
    await assert_failed_cleanly(fed, outcome, "site2", "did nothing in step 1", ["site1", "site3"])
    failures = outcome.summary["failures"]
    assert isinstance(failures, dict)
    assert "last seen: status 'running'" in failures["project"]
    assert "stopped" in failures["project"]  # says so
    assert await project_statuses(fed) == ["stopped"]


async def test_a_controller_that_dies_mid_run_is_named_and_its_project_stopped(
    website: RunningServer, tmp_path: Path
):
    fed = await build(tmp_path, website.url, local_sites=3, deadline="60s")
    await set_faults(website.url, die_mid_run="site3")
    started = time.monotonic()
    outcome = await run(fed)
    assert time.monotonic() - started < 30
    await assert_failed_cleanly(fed, outcome, "site3", "stopped answering", ["site1", "site2"])
    assert await project_statuses(fed) == ["stopped"]


async def test_a_killed_controller_is_named_and_its_project_stopped(
    website: RunningServer, tmp_path: Path
):
    fed = await build(tmp_path, website.url, local_sites=3, deadline="60s")
    await set_faults(website.url, app_hang="site1")  # keeps the project running meanwhile
    task = asyncio.create_task(run(fed))
    await wait_for_status(fed, "running")
    data_dir = fed.inventory.site("site2").controller.data_dir
    pid = int(Path(emulator_pid_file(data_dir)).read_text())
    os.kill(pid, signal.SIGKILL)
    outcome = await task
    bound = LIVENESS_PERIOD * (LIVENESS_MISSES + 2)
    assert outcome.summary["wall_seconds"] < 30 + bound  # type: ignore[operator]
    await assert_failed_cleanly(fed, outcome, "site2", "stopped answering", ["site1", "site3"])
    assert await project_statuses(fed) == ["stopped"]


async def test_a_website_restart_during_the_uploads_costs_a_pause_not_the_run(
    website_process: WebsiteProcess, tmp_path: Path
):
    fed = await build(tmp_path, website_process.url, local_sites=3, deadline="60s")
    task = asyncio.create_task(run(fed))
    await wait_for_status(fed, "prepare")
    website_process.kill()
    await asyncio.sleep(1.0)  # down for about 2 s, with its start
    website_process.start()
    outcome = await task
    assert_completed(outcome)
    assert await project_statuses(fed) == ["finished"]


async def test_a_website_away_past_the_deadline_fails_in_time_and_the_run_resumes(
    website_process: WebsiteProcess, tmp_path: Path
):
    fed = await build(tmp_path, website_process.url, local_sites=3, deadline="15s")
    task = asyncio.create_task(run(fed))
    await wait_for_status(fed, "prepare")
    website_process.kill()
    started = time.monotonic()
    outcome = await task
    assert time.monotonic() - started < 15 + 15
    assert outcome.code != 0
    failures = outcome.summary["failures"]
    assert isinstance(failures, dict) and failures
    site_lines = [line for name, line in failures.items() if name.startswith("site")]
    assert all(line.startswith("site") for line in site_lines), failures
    website_process.start()
    resumed = await run(fed, resume=str(outcome.summary["run_id"]))
    # the summary's status still carries the first attempt's failures (issue 13, section 2)
    assert resumed.code == 0 and resumed.summary["failures"] == {}
    assert means(resumed) == {"site1": CHECK_MEAN, "site2": CHECK_MEAN, "site3": CHECK_MEAN}
    assert await project_statuses(fed) == ["finished"]


async def test_a_website_paused_during_watch_fails_by_the_deadline_and_stops_the_project(
    website_process: WebsiteProcess, tmp_path: Path
):
    fed = await build(tmp_path, website_process.url, local_sites=3, deadline="20s")
    await set_faults(website_process.url, app_hang="site3")
    started = time.monotonic()
    task = asyncio.create_task(run(fed))
    await wait_for_status(fed, "running")
    website_process.signal(signal.SIGSTOP)
    # back once the deadline passed, while the failing run is stopping its project
    await asyncio.sleep(max(0.0, started + 23 - time.monotonic()))
    website_process.signal(signal.SIGCONT)
    outcome = await task
    assert time.monotonic() - started < 20 + 15
    failures = outcome.summary["failures"]
    assert isinstance(failures, dict)
    assert f"no answer from {fed.website_url} before the deadline" in failures["project"]
    assert "stopped" in failures["project"]
    assert await project_statuses(fed) == ["stopped"]


async def test_told_to_a_failing_run_leaves_its_project_running_and_says_so(
    website: RunningServer, tmp_path: Path
):
    """`RunOptions.keep_project_running` (the CLI's `--keep-project-running`)."""
    fed = await build(tmp_path, website.url, local_sites=3, deadline="10s")
    await set_faults(website.url, app_hang="site2")
    workflow = fed.workflow()
    state = start_state(fed.inventory, workflow, None)
    options = RunOptions(website_url=website.url, keep_project_running=True)
    progress = make_progress(io.StringIO())
    orchestrator = Orchestrator(fed.inventory, workflow, fed.passwords, state, options, progress)
    result = await asyncio.wait_for(orchestrator.run(), RUN_BOUND)
    assert "site2" in result.failures
    assert "left running (--keep-project-running)" in result.failures["project"]
    assert state.phases["shutdown"].state == "skipped"
    assert await project_statuses(fed) == ["running"]
    user = fed.inventory.coordinator.fc_user
    async with WebsiteClient(fed.website_url, user, fed.passwords[user]) as web:
        await web.set_status(state.project_id or 0, "shutdown")  # the test's own cleanup


async def test_a_run_whose_project_was_stopped_resumes_by_running_it_again(
    website: RunningServer, tmp_path: Path
):
    fed = await build(tmp_path, website.url, local_sites=3, deadline="10s")
    await set_faults(website.url, app_hang="site2")
    failed = await run(fed)
    assert failed.code != 0 and await project_statuses(fed) == ["stopped"]
    await set_faults(website.url, app_hang=None)
    resumed = await run(fed, resume=str(failed.summary["run_id"]))
    assert resumed.code == 0 and resumed.summary["failures"] == {}
    assert means(resumed) == {"site1": CHECK_MEAN, "site2": CHECK_MEAN, "site3": CHECK_MEAN}
    assert await project_statuses(fed) == ["finished"]  # the same project, run again
