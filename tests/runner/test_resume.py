"""A run killed in any phase resumes to the right answer and never makes a second project.

The runner runs as its own process against three local sites (detached controllers, as on
real hosts they outlive the runner) and the emulated website in this test's process. It is
killed with SIGKILL the moment its progress shows the phase under test, then started again
with `--resume`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from runner.demo_data import CHECK_MEAN
from tests.runner.federation import (
    RUN_DEADLINE,
    Federation,
    assert_completed,
    local_federation,
    only_run,
    outputs,
    run_until,
)

SITES = ("site1", "site2", "site3")
SITE_PHASES = ["connect", "controller", "join", "upload", "finalize", "collect", "stop"]
RUN_PHASES = ["project", "tokens", "prepare", "watch"]
#: the outputs a run writes after its last checkpoint
OUTPUTS = ("metrics.json", "report.html", "manifest.json")


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    async with local_federation(tmp_path) as fed:
        yield fed


@pytest.mark.parametrize(
    "marker",
    [f"site2 {p} running" for p in SITE_PHASES] + [f"run {p} running" for p in RUN_PHASES],
)
async def test_killed_in_a_phase_resumes_to_the_answer_with_one_project(
    federation: Federation, marker: str
):
    argv = federation.runner_argv()
    code, log, _ = await run_until(argv, marker)
    assert code == -signal.SIGKILL, f"the runner ended before {marker!r}:\n{log}"
    run_id = only_run(federation.outdir)

    code, log, _ = await run_until([*argv, "--resume", run_id], None)
    assert code == 0, log
    assert only_run(federation.outdir) == run_id
    run_dir = federation.outdir / run_id
    means = {s: t.split()[-1] for s, t in outputs(run_dir, "output.csv").items()}
    assert means == {"site1": CHECK_MEAN, "site2": CHECK_MEAN, "site3": CHECK_MEAN}
    assert await federation.projects() == [f"fedstack {run_id}"]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["phase"] == "done"
    assert_completed(run_dir, SITES)


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

    code, log, _ = await run_until([*argv, "--resume", run_id], None)
    assert code == 0, log
    assert await federation.projects() == [f"fedstack {run_id}"]


async def test_resume_refuses_a_changed_workflow(federation: Federation):
    argv = federation.runner_argv()
    code, log, _ = await run_until(argv, "run project running")
    assert code == -signal.SIGKILL, log
    run_id = only_run(federation.outdir)
    text = federation.workflow_file.read_text().replace('deadline = "3m"', 'deadline = "4m"')
    federation.workflow_file.write_text(text)
    code, log, _ = await run_until([*argv, "--resume", run_id], None)
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


async def test_killed_in_stop_after_every_site_collected_resumes_at_once(
    federation: Federation,
):
    """Every site collected, the project finished: nothing to wait for "every participant"."""
    argv = federation.runner_argv()
    code, log, _ = await run_until(argv, [f"{s} stop running" for s in SITES])
    assert code == -signal.SIGKILL, log
    run_id = only_run(federation.outdir)
    state = json.loads((federation.outdir / run_id / "state.json").read_text())
    assert all(s["collect_done"] for s in state["sites"].values())

    started = time.monotonic()
    code, log, out = await run_until([*argv, "--resume", run_id])
    assert code == 0, log
    assert time.monotonic() - started < 60, "the resume waited for something already done"
    assert out.splitlines()[0] == f"run {run_id}: completed; project {state['project_id']}"
    assert_completed(federation.outdir / run_id, SITES)
    assert await federation.projects() == [f"fedstack {run_id}"]


async def test_failed_in_watch_resumes_and_collects_what_is_missing(federation: Federation):
    """A watch that gave up (the website slow) while the project went on to finish.

    The state is the one such a run leaves: the watch failed, every site joined, finalized and
    went through collection, site3's before its result existed (only its log came home).
    """
    argv = federation.runner_argv()
    code, log, _ = await run_until(argv)
    assert code == 0, log
    run_id = only_run(federation.outdir)
    run_dir = federation.outdir / run_id
    path = run_dir / "state.json"
    state = json.loads(path.read_text())
    state["phase"] = "failed"
    watch = state["phases"]["watch"]
    watch.update(state="failed", message=f"project {state['project_id']}: gave up waiting")
    site3 = state["sites"]["site3"]
    site3["collected"] = [c for c in site3["collected"] if c["kind"] == "log"]
    path.write_text(json.dumps(state))
    for result in (run_dir / "sites" / "site3").glob("run*/*.zip"):
        result.unlink()
    for name in OUTPUTS:
        (run_dir / name).unlink()

    started = time.monotonic()
    code, log, out = await run_until([*argv, "--resume", run_id])
    assert code == 0, log
    assert time.monotonic() - started < 60, "the resume waited for something already done"
    assert out.splitlines()[0].startswith(f"run {run_id}: completed")
    assert_completed(run_dir, SITES)


async def test_killed_before_the_outputs_resume_writes_them(federation: Federation):
    """The final checkpoint says done, no output was written: `--resume` writes them."""
    argv = federation.runner_argv()
    code, log, _ = await run_until(argv)
    assert code == 0, log
    run_id = only_run(federation.outdir)
    run_dir = federation.outdir / run_id
    for name in OUTPUTS:
        (run_dir / name).unlink()

    code, log, out = await run_until([*argv, "--resume", run_id])
    assert code == 0, log
    assert out.splitlines()[0].startswith(f"run {run_id}: completed")
    assert_completed(run_dir, SITES)
    assert await federation.projects() == [f"fedstack {run_id}"]

    # with every output there, the run is finished: a resume has nothing to do
    code, log, _ = await run_until([*argv, "--resume", run_id])
    assert code == 2
    assert log.strip().splitlines()[-1] == (
        f"runner: run {run_id} already finished; its results are in {run_dir}"
    )


async def test_a_resume_that_succeeds_reports_completed_and_keeps_the_past_as_history(
    federation: Federation,
):
    """Ctrl-C during site2's upload (the website slow, so it is under way), then a resume.

    The first attempt's cut-off phases are its history; the outcome is the resume's.
    """
    faults = f"{federation.website_url}/_emulator/faults"
    async with httpx.AsyncClient() as client:
        (await client.put(faults, json={"latency_ms": 1000})).raise_for_status()
        argv = federation.runner_argv()
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        assert proc.stderr is not None
        async with asyncio.timeout(RUN_DEADLINE):
            while line := (await proc.stderr.readline()).decode():
                if line.rstrip().endswith("site2 upload running"):
                    proc.send_signal(signal.SIGINT)
                    break
            rest = (await proc.stderr.read()).decode()
            assert await proc.wait() == 130, rest
        (await client.put(faults, json={"latency_ms": 0})).raise_for_status()
    run_id = only_run(federation.outdir)
    run_dir = federation.outdir / run_id
    first = json.loads((run_dir / "state.json").read_text())
    assert first["sites"]["site2"]["error"] == "upload: interrupted"

    code, log, out = await run_until([*argv, "--resume", run_id])
    assert code == 0, log
    assert out.splitlines()[0] == f"run {run_id}: completed; project {first['project_id']}"
    assert_completed(run_dir, SITES)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    attempts = [(a["number"], a["outcome"]) for a in metrics["attempts"]]
    assert attempts == [(1, "interrupted"), (2, "completed")]
    assert metrics["attempts"][0]["failures"]["site2"] == "upload: interrupted"
    assert metrics["attempts"][1]["failures"] == {}
    report = (run_dir / "report.html").read_text()
    assert "<h2>Attempts</h2>" in report
    assert "upload: interrupted" in report


async def test_a_project_short_of_a_member_never_completes(federation: Federation):
    """Two sites with one FeatureCloud user join as one member: the run fails, naming why.

    The orchestrator is driven directly, past any check of the inputs, since this is the
    engine's own guarantee: never `completed` unless the project's members are the sites.
    """
    import io
    import re

    from runner.engine import checkpoint as cp
    from runner.engine.orchestrate import Orchestrator, RunOptions
    from runner.outputs.progress import make_progress

    workflow = federation.workflow()
    sites = list(federation.inventory.sites)
    sites[2] = sites[2].model_copy(update={"fc_user": sites[1].fc_user})
    inventory = federation.inventory.model_copy(update={"sites": sites})
    state = cp.new_state(
        cp.new_run_id(),
        workflow_digest=workflow.digest,
        inventory_digest=cp.inventory_digest(inventory),
        sites=[s.name for s in sites],
        app=workflow.app,
    )
    options = RunOptions(website_url=federation.website_url)
    progress = make_progress(io.StringIO())
    async with asyncio.timeout(RUN_DEADLINE):
        result = await Orchestrator(
            inventory, workflow, federation.passwords, state, options, progress
        ).run()
    assert not result.ok
    assert re.fullmatch(
        rf"project {state.project_id} has 2 members but the inventory has 3 sites; the token "
        r"of site[23] was never used \(is its FeatureCloud user another site's too\?\)",
        result.failures["project"],
    ), result.failures
    assert state.phase == "failed"
    assert state.attempts[-1].outcome == "failed"
    assert "prepare" not in state.phases  # found before the app ran on wrong data


def test_a_finished_project_without_a_site_result_is_not_complete():
    from runner.engine.orchestrate import missing_results
    from tests.runner.runs import finished_state

    state = finished_state()
    state.project_status = "finished"
    assert missing_results(state) == {}
    state.site("beta").collected = [c for c in state.site("beta").collected if c.kind == "log"]
    assert missing_results(state) == {"beta": "site beta: no result of project 17 was collected"}


def test_a_state_from_before_attempts_keeps_its_failure_as_history():
    """A run written by an older runner (no attempts) resumed: its failure is history."""
    from tests.runner.runs import finished_state

    state = finished_state(fail="beta")
    state.begin_attempt()
    first, second = state.attempts
    assert (first.number, first.outcome) == (1, "failed")
    assert first.failures == {"beta": "upload: connection reset by peer"}
    assert (second.number, second.outcome) == (2, None)
    assert state.site("beta").error is None
    assert state.site("beta").phases["upload"].state == "pending"
