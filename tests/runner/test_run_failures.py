"""How a run fails: early and without a project when it can, named and bounded when it cannot.

Local sites (directories and controller processes on this machine) against the emulated
website: the same orchestration as on SSH hosts, at a fraction of the cost.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from fcapi.emulator.serve import RunningServer, running_site
from fcapi.errors import ExitCode
from runner.api import execute
from runner.errors import EXIT_DEADLINE, BadInput
from tests.runner.federation import Federation, build

#: a failing run must still end well inside this (its own deadline is shorter)
TEST_DEADLINE = 90.0


@pytest.fixture
async def website() -> AsyncIterator[RunningServer]:
    async with running_site() as web:
        yield web


async def run(fed: Federation, passwords: dict[str, SecretStr] | None = None):
    return await asyncio.wait_for(
        execute(
            fed.inventory,
            fed.workflow(),
            passwords or fed.passwords,
            website_url=fed.website_url,
        ),
        TEST_DEADLINE,
    )


def use_host_file(fed: Federation, site: str, path: Path) -> None:
    """Point `site`'s data at a path on its host instead of the runner's copy."""
    text = fed.workflow_file.read_text()
    local = f'files = [{{ path = "input/{site}.csv", as = "data.csv" }}]'
    assert local in text
    fed.workflow_file.write_text(
        text.replace(local, f'host_files = [{{ path = "{path}", as = "data.csv" }}]')
    )


async def test_a_missing_host_file_stops_the_run_before_any_project(
    website: RunningServer, tmp_path: Path
):
    fed = await build(tmp_path, website.url, local_sites=3)
    use_host_file(fed, "site2", Path(fed.inventory.site("site2").workdir) / "nope.csv")
    # a local site's host is this machine: the preflight finds it, before any run folder
    with pytest.raises(BadInput, match=r"site 'site2', field host_files: .*nope.csv is not"):
        await run(fed)
    assert not fed.outdir.exists()
    assert await fed.projects() == []


async def test_a_wrong_password_stops_the_run_before_any_project(
    website: RunningServer, tmp_path: Path
):
    fed = await build(tmp_path, website.url, local_sites=3)
    wrong = dict(fed.passwords)
    user3 = fed.inventory.site("site3").fc_user
    wrong[user3] = SecretStr("not-the-password")
    with pytest.raises(BadInput, match=f"FeatureCloud user {user3}") as caught:
        await run(fed, wrong)
    assert "not-the-password" not in str(caught.value)
    assert not fed.outdir.exists()
    assert await fed.projects() == []


async def test_a_site_that_never_finalizes_is_named_when_the_deadline_passes(
    website: RunningServer, tmp_path: Path
):
    fed = await build(tmp_path, website.url, local_sites=3, deadline="12s")
    fifo = Path(fed.inventory.site("site3").workdir) / "stuck.csv"
    os.mkfifo(fifo)  # readable, but nothing ever writes: the host's upload never ends
    use_host_file(fed, "site3", fifo)
    outcome = await run(fed)
    assert outcome.code == EXIT_DEADLINE  # the run ran out of time (was 11 before exit 7 existed)
    failures = outcome.summary["failures"]
    assert "site3 never finalized" in failures["project"], failures
    assert "stayed in prepare" in failures["project"]
    assert "deadline" in failures["site3"] and "upload" in failures["site3"]
    assert "site1" not in failures and "site2" not in failures
    # the stuck upload was killed with the run, not left reading the pipe
    readers = [
        pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline(pid).find(str(fifo)) >= 0
    ]
    assert readers == []


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def test_an_app_that_fails_fails_the_run_and_keeps_the_logs(
    website: RunningServer, tmp_path: Path
):
    fed = await build(tmp_path, website.url, local_sites=3)
    async with httpx.AsyncClient() as client:
        r = await client.put(f"{website.url}/_emulator/faults", json={"app_fail": "site2"})
        r.raise_for_status()
    outcome = await run(fed)
    assert outcome.code == ExitCode.PROJECT_FAILED
    assert outcome.summary["project_status"] in ("error", "failed")
    assert list(outcome.run_dir.glob("sites/site2/run*/log_step*.txt"))
    report = (outcome.run_dir / "report.html").read_text()
    assert "failed" in report


async def test_one_login_per_user_per_run_the_preflight_included(
    website: RunningServer, tmp_path: Path
):
    """The preflight checks every password by logging in; the run must reuse those logins."""
    fed = await build(tmp_path, website.url, local_sites=3)

    async def logins_served() -> int:
        async with httpx.AsyncClient() as client:
            served = (await client.get(f"{website.url}/_emulator/requests")).json()
        return int(served["by_endpoint"].get("POST /api/auth/login/", 0))

    before = await logins_served()
    outcome = await run(fed)
    assert outcome.code == 0
    users = len({s.fc_user for s in fed.inventory.sites})
    assert await logins_served() - before == users
    metrics = json.loads((outcome.run_dir / "metrics.json").read_text())
    assert metrics["requests"]["by_endpoint"]["POST /api/auth/login/"] == users
