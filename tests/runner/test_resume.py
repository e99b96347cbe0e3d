"""A run killed in any phase resumes to the right answer and never makes a second project.

The runner runs as its own process against three local sites (detached controllers, as on
real hosts they outlive the runner) and the emulated website in this test's process. It is
killed with SIGKILL the moment its progress shows the phase under test, then started again
with `--resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fcapi.emulator.serve import running_site
from runner.demo_data import CHECK_MEAN
from tests.runner.federation import Federation, build, outputs

#: how long one runner process may take here before the test calls it hung
RUN_DEADLINE = 120.0

SITE_PHASES = ["connect", "controller", "join", "upload", "finalize", "collect", "stop"]
RUN_PHASES = ["project", "tokens", "prepare", "watch"]


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    async with running_site() as web:
        fed = await build(tmp_path, web.url, local_sites=3)
        try:
            yield fed
        finally:
            for site in fed.inventory.sites:  # whatever a killed runner left running
                subprocess.run(["sh", "-c", site.controller.stop_command], timeout=30, check=False)
            # a start the killed runner had in flight may have come up after the stop
            kill_processes_under(fed.work)


def kill_processes_under(folder: Path) -> None:
    """SIGKILL every process whose command line names `folder`."""
    mark = str(folder).encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if mark in cmdline and int(pid) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


async def run_until(argv: list[str], marker: str | None) -> tuple[int, str]:
    """Run the runner; SIGKILL it when a stderr line ends with `marker`. (exit code, stderr)"""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.stderr is not None and proc.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(RUN_DEADLINE):
        while line := (await proc.stderr.readline()).decode():
            seen.append(line)
            if marker is not None and line.rstrip().endswith(marker):
                proc.send_signal(signal.SIGKILL)
                break
        await proc.stdout.read()
        code = await proc.wait()
    return code, "".join(seen)


def only_run(outdir: Path) -> str:
    runs = [p.name for p in outdir.iterdir() if (p / "state.json").is_file()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize(
    "marker",
    [f"site2 {p} running" for p in SITE_PHASES] + [f"run {p} running" for p in RUN_PHASES],
)
async def test_killed_in_a_phase_resumes_to_the_answer_with_one_project(
    federation: Federation, marker: str
):
    argv = federation.runner_argv()
    code, log = await run_until(argv, marker)
    assert code == -signal.SIGKILL, f"the runner ended before {marker!r}:\n{log}"
    run_id = only_run(federation.outdir)

    code, log = await run_until([*argv, "--resume", run_id], None)
    assert code == 0, log
    assert only_run(federation.outdir) == run_id
    run_dir = federation.outdir / run_id
    means = {s: t.split()[-1] for s, t in outputs(run_dir, "output.csv").items()}
    assert means == {"site1": CHECK_MEAN, "site2": CHECK_MEAN, "site3": CHECK_MEAN}
    assert await federation.projects() == [f"fedstack {run_id}"]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["phase"] == "done"


async def test_ctrl_c_stops_cleanly_and_says_how_to_resume(federation: Federation):
    argv = federation.runner_argv()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    async with asyncio.timeout(RUN_DEADLINE):
        while line := (await proc.stderr.readline()).decode():
            if line.rstrip().endswith("site1 controller ok"):
                proc.send_signal(signal.SIGINT)
                break
        rest = (await proc.stderr.read()).decode()
        code = await proc.wait()
    assert code == 130, rest
    run_id = only_run(federation.outdir)
    assert f"--resume {run_id}" in rest
    state = json.loads((federation.outdir / run_id / "state.json").read_text())
    assert state["phase"] == "interrupted"

    code, log = await run_until([*argv, "--resume", run_id], None)
    assert code == 0, log
    assert await federation.projects() == [f"fedstack {run_id}"]


async def test_resume_refuses_a_changed_workflow(federation: Federation):
    argv = federation.runner_argv()
    code, log = await run_until(argv, "run project running")
    assert code == -signal.SIGKILL, log
    run_id = only_run(federation.outdir)
    text = federation.workflow_file.read_text().replace('deadline = "3m"', 'deadline = "4m"')
    federation.workflow_file.write_text(text)
    code, log = await run_until([*argv, "--resume", run_id], None)
    assert code == 2
    assert log.strip().splitlines()[-1] == (
        f"runner: cannot resume run {run_id}: the workflow file changed since it started; "
        "restore it or start a new run"
    )


@pytest.mark.parametrize("recorded", ["id", "intent only"])
async def test_resume_finishes_a_project_cut_off_between_its_two_steps(
    federation: Federation, recorded: str
):
    """Killed after `create_project` and before its app was set: no second project."""
    from fcapi.website import WebsiteClient
    from runner.api import execute
    from runner.engine import checkpoint as cp

    workflow = federation.workflow()
    run_id = cp.new_run_id()
    state = cp.new_state(
        run_id,
        workflow_digest=workflow.digest,
        inventory_digest=cp.inventory_digest(federation.inventory),
        sites=[s.name for s in federation.inventory.sites],
        app=workflow.app,
    )
    user = federation.inventory.coordinator.fc_user
    async with WebsiteClient(federation.website_url, user, federation.passwords[user]) as web:
        project = await web.create_project(cp.project_name(run_id))
    state.project_create_started_at = cp.utcnow()
    if recorded == "id":
        state.record_project(project.id)
    state.start_phase(None, "project")
    cp.save_state(state, workflow.outdir)

    outcome = await execute(
        federation.inventory,
        workflow,
        federation.passwords,
        website_url=federation.website_url,
        resume=run_id,
    )
    assert outcome.code == 0, outcome.summary
    assert outcome.summary["project_id"] == project.id
    assert await federation.projects() == [f"fedstack {run_id}"]
    means = {s: t.split()[-1] for s, t in outputs(outcome.run_dir, "output.csv").items()}
    assert set(means.values()) == {CHECK_MEAN}
