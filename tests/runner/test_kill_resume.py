"""Killed at any moment, a run resumes to the one true answer: the kill-and-resume test.

The runner is a real process, SIGKILLed at moments drawn with a fixed seed from every phase of
a three-site mean-app run on the emulator (some resumes are killed again), then resumed to its
end. Every time: one project on the website for the run, the documented mean at every site,
and outputs that say so (completed, each site's result, every file in the manifest), with
the killed attempts kept as history. Sized for two shared cores: ~16 runs of a few seconds.
"""

from __future__ import annotations

import json
import random
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.engine.checkpoint import PHASE_ORDER, list_runs
from tests.runner.federation import Federation, assert_completed, local_federation, run_until

SEED = 20261202
KILLS = 16
SITES = ("site1", "site2", "site3")
RUN_LEVEL = {"project", "tokens", "prepare", "watch"}
#: the coordinator joins by creating the project: its join has no `running` line
JOINERS = ("site2", "site3")
#: after a kill at a phase's line, the runner goes on for this long at most before it dies
MAX_DELAY = 0.4


@dataclass(frozen=True)
class Kill:
    """Where one run is killed, and where its resume is killed again (None: it is not)."""

    at: str
    delay: float
    again: str | None
    again_delay: float


def kill_plan(rng: random.Random) -> list[Kill]:
    """Every phase just after it started (at a random site), then moments drawn at random.

    A kill lands a little after its line (a delay, and the time the runner takes to die),
    so the drawn ones fall anywhere in or between phases.
    """
    firsts = [(phase, "running", rng.uniform(0, 0.05)) for phase in PHASE_ORDER]
    drawn = [
        (rng.choice(PHASE_ORDER), rng.choice(["running", "ok"]), rng.uniform(0, MAX_DELAY))
        for _ in range(KILLS - len(PHASE_ORDER))
    ]
    plan = []
    for phase, edge, delay in rng.sample(firsts + drawn, KILLS):
        who = "run" if phase in RUN_LEVEL else rng.choice(JOINERS if phase == "join" else SITES)
        line = f"{who} {phase} {edge}"
        if phase == "watch" and edge == "ok" and rng.random() < 0.5:
            line = "run watch running: project running"  # the app is computing
        again = None
        if rng.random() < 0.3:
            site = rng.choice(SITES)
            again = rng.choice([f"{site} connect ok", "run watch running", f"{site} stop running"])
        plan.append(Kill(line, delay, again, rng.uniform(0, MAX_DELAY)))
    return plan


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    async with local_federation(tmp_path) as fed:
        yield fed


def cut_off(run_dir: Path) -> list[str]:
    """The phases a killed runner's checkpoint shows under way: where the kill landed."""
    state = json.loads((run_dir / "state.json").read_text())
    found = [f"run {p}" for p, r in state["phases"].items() if r["state"] == "running"]
    for name, site in state["sites"].items():
        found += [f"{name} {p}" for p, r in site["phases"].items() if r["state"] == "running"]
    return found or [f"between phases ({state['phase']})"]


def finished(run_dir: Path) -> bool:
    state = json.loads((run_dir / "state.json").read_text())
    return state["phase"] == "done" and (run_dir / "manifest.json").is_file()


async def test_killed_anywhere_resumes_to_one_project_and_the_right_mean(
    federation: Federation,
):
    argv = federation.runner_argv()
    runs: list[str] = []
    landed: list[tuple[str, list[str]]] = []
    for kill in kill_plan(random.Random(SEED)):
        before = set(list_runs(federation.outdir))
        first = await run_until(argv, kill.at, delay=kill.delay)
        (run_id,) = set(list_runs(federation.outdir)) - before
        runs.append(run_id)
        run_dir = federation.outdir / run_id
        resume = [*argv, "--resume", run_id]
        processes = 1
        if first.code == -signal.SIGKILL:
            landed.append((kill.at, cut_off(run_dir)))
            if kill.again is not None:
                again = await run_until(resume, kill.again, delay=kill.again_delay)
                assert again.code in (0, -signal.SIGKILL), again.log
                processes += 1
                if again.code == 0:
                    resume = []
            if resume:
                done_before = finished(run_dir)  # the second kill came after the outputs
                final = await run_until(resume)
                processes += 1
                if done_before:
                    assert final.code == 2, final.log
                    assert "already finished" in final.log
                else:
                    assert final.code == 0, f"killed at {kill}:\n{final.log}"
                    assert final.out.startswith(f"run {run_id}: completed; project "), final.out
        else:
            assert first.code == 0, first.log  # it ended before the kill came

        assert_completed(run_dir, SITES)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        outcomes = [a["outcome"] for a in metrics["attempts"]]
        assert outcomes[-1] == "completed" and set(outcomes[:-1]) <= {"killed"}, outcomes
        assert len(outcomes) <= processes
        projects = await federation.projects()
        assert sorted(projects) == sorted(f"fedstack {r}" for r in runs), kill

    print(f"\n{len(landed)} of {KILLS} runs killed and resumed; the kills landed in:")
    for at, where in landed:
        print(f"  after {at!r}: {', '.join(where)}")
    assert len(landed) >= KILLS - 3, "most kills must land before the run ends by itself"
