"""`--events`: one JSON object per line for every phase change, failure and result, as it happens.

A script reading the stream relies on: every line parses, one `phase` event per phase change
the run records (so none is missed or invented), every site and phase covered, times in UTC
with a Z, the result last, and a failing site named in its failure event. The demo runs as a
process with `--events -`, the way a script starts it.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from fcapi.emulator.serve import RunningServer, running_site
from runner.api import execute
from runner.errors import EXIT_BAD_INPUT, EXIT_PROJECT_FAILED
from tests.runner.federation import build

RUN_BOUND = 120.0


def parse_lines(text: str) -> list[dict[str, object]]:
    events = [json.loads(line) for line in text.splitlines()]
    for event in events:
        assert isinstance(event["time"], str) and event["time"].endswith("Z"), event
        datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        assert {"event", "site", "phase", "state", "detail"} <= set(event), event
    return events


def recorded_phases(run_dir: Path) -> dict[tuple[str | None, str], str]:
    """Each (site, phase) the run's checkpoint records with its end state (run-level: None)."""
    state = json.loads((run_dir / "state.json").read_text())
    seen: dict[tuple[str | None, str], str] = {
        (None, name): record["state"] for name, record in state["phases"].items()
    }
    for site, record in state["sites"].items():
        for name, phase in record["phases"].items():
            seen[(site, name)] = phase["state"]
    return seen


def test_the_demo_streams_every_phase_change_as_a_json_line(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--demo", "--events", "-", "--outdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=RUN_BOUND,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = parse_lines(proc.stdout)  # stdout is JSON lines only: the summary went to stderr
    assert "mean of the 3 sites" in proc.stderr
    assert events[0]["event"] == "start" and events[-1]["event"] == "result"
    result = events[-1]
    assert result["state"] == "completed"
    assert isinstance(result["detail"], dict) and result["detail"]["exit_code"] == 0
    run_dir = Path(str(result["detail"]["run_dir"]))
    phases = [e for e in events if e["event"] == "phase"]
    # each phase the run records ends once, as recorded (ok, or skipped: the coordinator's join)
    ended = [(e["site"], e["phase"], e["state"]) for e in phases if e["state"] != "running"]
    assert len(ended) == len(set(ended))
    assert {(s, p): st for s, p, st in ended} == recorded_phases(run_dir)
    started = Counter((e["site"], e["phase"]) for e in phases if e["state"] == "running")
    assert set(started) <= {(s, p) for s, p, _ in ended}  # nothing left running
    assert {e["site"] for e in phases} == {None, "site1", "site2", "site3"}
    assert all(e["run_id"] == result["run_id"] for e in events)
    times = [str(e["time"]) for e in events]
    assert times == sorted(times)


@pytest.fixture
async def website() -> AsyncIterator[RunningServer]:
    async with running_site() as web:
        yield web


async def test_a_failing_runs_failure_event_names_the_site(website: RunningServer, tmp_path: Path):
    fed = await build(tmp_path, website.url, local_sites=3, deadline="60s")
    async with httpx.AsyncClient(base_url=website.url) as client:
        (await client.put("/_emulator/faults", json={"app_fail": "site2"})).raise_for_status()
    stream = io.StringIO()
    outcome = await asyncio.wait_for(
        execute(
            fed.inventory, fed.workflow(), fed.passwords, website_url=fed.website_url, events=stream
        ),
        RUN_BOUND,
    )
    assert outcome.code == EXIT_PROJECT_FAILED
    events = parse_lines(stream.getvalue())
    failures = [e for e in events if e["event"] == "failure"]
    assert "site2" in {e["site"] for e in failures}, failures
    site2 = next(e for e in failures if e["site"] == "site2")
    assert str(site2["detail"]).startswith("site site2:") and "its app failed" in str(
        site2["detail"]
    )
    failed_phase = [e for e in events if e["event"] == "phase" and e["state"] == "failed"]
    assert failed_phase, "the phase that failed is an event of its own"
    assert events[-1]["event"] == "result" and events[-1]["state"] == "failed"
    assert events[-1]["detail"]["exit_code"] == EXIT_PROJECT_FAILED  # type: ignore[index]


def test_an_events_file_that_cannot_be_written_is_bad_input(tmp_path: Path):
    target = tmp_path / "no-such-folder" / "events.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--demo", "--events", str(target)],
        capture_output=True,
        text=True,
        timeout=RUN_BOUND,
        check=False,
    )
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.startswith(f"runner: --events {target}: cannot write it"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1
