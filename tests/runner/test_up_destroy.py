"""`python -m runner --stack NAME --up --destroy`: the stack up, the run, the stack down.

A fake `pulumi` on PATH records every call and answers as the CLI would (engine events in
`--event-log`, the inventory from `stack output`); the runner is a real process with local
sites and the emulated website. Whatever the run does, the stack is destroyed exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from runner.errors import (
    EXIT_BAD_INPUT,
    EXIT_DEADLINE,
    EXIT_INTERRUPTED,
    EXIT_PROJECT_FAILED,
    EXIT_SITES_FAILED,
)
from runner.stack.operation import PulumiStack
from tests.runner.federation import RUN_DEADLINE, Federation, local_federation

FAKE_PULUMI = f"""#!{sys.executable}
import json, os, signal, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(" ".join(args) + "\\n")
def cancelled(*_):
    print("^C received; cancelling the update", flush=True)
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write("cancelled " + args[0] + "\\n")
    sys.exit(255)
signal.signal(signal.SIGINT, cancelled)
if args == ["version"]:
    print("v3.200.0")
    sys.exit(0)
args = [a for a in args if a != "--non-interactive"]
if args[:2] == ["stack", "select"]:
    sys.exit(0)
if args[:2] == ["stack", "output"]:
    print(json.dumps(json.load(open(os.environ["FAKE_OUTPUTS"]))))
    sys.exit(0)
stack = args[args.index("--stack") + 1]
log = open(args[args.index("--event-log") + 1], "a")
RESOURCES = [("pulumi:pulumi:Stack", "fedstack-" + stack)] + [
    ("fedstack:ssh:Host", f"site{{i}}") for i in (1, 2, 3)
]
def emit(kind, op, kind_name):
    typ, name = kind_name
    urn = f"urn:pulumi:{{stack}}::fedstack::{{typ}}::{{name}}"
    log.write(json.dumps({{kind: {{"metadata": {{"op": op, "urn": urn, "type": typ}}}}}}) + "\\n")
    log.flush()
def hang():
    time.sleep(120)
    sys.exit(3)
if args[0] == "up":
    for resource in RESOURCES:
        emit("resourcePreEvent", "create", resource)
        if os.environ.get("FAKE_UP") == "hang":
            hang()
        emit("resOutputsEvent", "create", resource)
    if os.environ.get("FAKE_UP") == "fail":
        log.write(json.dumps({{"diagnosticEvent": {{"severity": "error",
                  "message": "error: creating site3: quota exceeded\\n"}}}}) + "\\n")
        sys.exit(255)
    print("Resources: 4 created")
    sys.exit(0)
if args[0] == "destroy":
    for i, resource in enumerate(reversed(RESOURCES)):
        emit("resourcePreEvent", "delete", resource)
        if i == 1 and os.environ.get("FAKE_DESTROY") == "hang":
            hang()
        emit("resOutputsEvent", "delete", resource)
    print("Resources: 4 deleted")
    sys.exit(0)
print("unknown command", args, file=sys.stderr)
sys.exit(2)
"""


class Ran(NamedTuple):
    code: int
    err: str
    out: str
    calls: list[str]

    def destroys(self) -> int:
        return sum(1 for call in self.calls if call.startswith("--non-interactive destroy "))


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake CLI first on PATH; returns its call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pulumi"
    exe.write_text(FAKE_PULUMI)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    return log


@pytest.fixture
async def federation(tmp_path: Path, fake_pulumi: Path) -> AsyncIterator[Federation]:
    async with local_federation(tmp_path / "fed") as fed:
        inventory, _ = fed.write_inputs()
        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps({"inventory": json.loads(inventory.read_text())}))
        os.environ["FAKE_OUTPUTS"] = str(outputs)
        yield fed
        del os.environ["FAKE_OUTPUTS"]


def argv(fed: Federation, *extra: str) -> list[str]:
    _, env = fed.write_inputs()
    project = fed.work / "project"
    project.mkdir(exist_ok=True)
    return [
        *(sys.executable, "-m", "runner", "--stack", "sim", "--up", "--destroy"),
        *("--project-dir", str(project), "--workflow", str(fed.workflow_file)),
        *("--env-file", str(env), "--website-url", fed.website_url, *extra),
    ]


async def run(
    words: list[str], log: Path, interrupt_at: Sequence[str] = (), env: dict[str, str] | None = None
) -> Ran:
    """The runner as a process; SIGINT to it at the first stderr line holding each marker."""
    proc = await asyncio.create_subprocess_exec(
        *words,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert proc.stderr is not None and proc.stdout is not None
    markers, seen = list(interrupt_at), []
    try:
        async with asyncio.timeout(RUN_DEADLINE):
            while line := (await proc.stderr.readline()).decode():
                seen.append(line)
                if markers and markers[0] in line:
                    markers.pop(0)
                    proc.send_signal(signal.SIGINT)
            out = (await proc.stdout.read()).decode()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert not markers, f"never saw {markers}: {''.join(seen)}"
    return Ran(code, "".join(seen), out, log.read_text().splitlines())


def stuck_site(fed: Federation, site: str = "site3") -> None:
    """`site`'s data is a FIFO on its host that nobody writes: its upload never ends."""
    fifo = Path(fed.inventory.site(site).workdir) / "stuck.csv"
    os.mkfifo(fifo)
    text = fed.workflow_file.read_text()
    local = f'files = [{{ path = "input/{site}.csv", as = "data.csv" }}]'
    fed.workflow_file.write_text(
        text.replace(local, f'host_files = [{{ path = "{fifo}", as = "data.csv" }}]')
    )


async def test_up_run_destroy_succeeds_and_shows_each_resource(federation, fake_pulumi) -> None:
    ran = await run(argv(federation), fake_pulumi)
    assert ran.code == 0, ran.err
    assert "completed" in ran.out
    assert ran.destroys() == 1
    ups = [c for c in ran.calls if c.startswith("--non-interactive up ")]
    assert len(ups) == 1 and "--yes --skip-preview --stack sim --event-log " in ups[0]
    assert "created fedstack:ssh:Host site2" in ran.err
    assert "deleted fedstack:ssh:Host site1" in ran.err
    # the order: up, the inventory from the stack's outputs, then destroy at the very end
    assert ran.calls.index(ups[0]) < next(i for i, c in enumerate(ran.calls) if "stack output" in c)
    assert ran.calls[-1].startswith("--non-interactive destroy ")
    for password in federation.passwords.values():
        assert password.get_secret_value() not in "\n".join(ran.calls)


async def test_a_failing_app_still_tears_the_stack_down(federation, fake_pulumi) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.put(
            f"{federation.website_url}/_emulator/faults", json={"app_fail": "site2"}
        )
        r.raise_for_status()
    ran = await run(argv(federation), fake_pulumi)
    assert ran.code == EXIT_PROJECT_FAILED, ran.err
    assert ran.destroys() == 1
    assert "destroy: done" in ran.err


async def test_a_run_past_its_deadline_still_tears_the_stack_down(federation, fake_pulumi) -> None:
    text = federation.workflow_file.read_text().replace('deadline = "3m"', 'deadline = "10s"')
    federation.workflow_file.write_text(text)
    stuck_site(federation)
    ran = await run(argv(federation), fake_pulumi)
    assert ran.code == EXIT_DEADLINE, ran.err  # the run's own code, kept through the teardown
    assert "deadline" in ran.out
    assert ran.destroys() == 1


async def test_ctrl_c_during_the_run_tears_the_stack_down(federation, fake_pulumi) -> None:
    stuck_site(federation)
    ran = await run(argv(federation), fake_pulumi, interrupt_at=["site3 upload running"])
    assert ran.code == EXIT_INTERRUPTED, ran.err
    assert ran.destroys() == 1
    last = ran.err.strip().splitlines()[-1]
    assert last.startswith("runner: interrupted; run ") and last.endswith("stack sim was destroyed")


async def test_a_second_ctrl_c_stops_waiting_and_says_what_is_left(federation, fake_pulumi) -> None:
    stuck_site(federation)
    ran = await run(
        argv(federation),
        fake_pulumi,
        interrupt_at=["site3 upload running", "deleting fedstack:ssh:Host site2"],
        env={"FAKE_DESTROY": "hang"},
    )
    assert ran.code == EXIT_INTERRUPTED, ran.err
    assert ran.destroys() == 1
    assert "cancelled destroy" in ran.calls, "pulumi was told to stop, cleanly"
    project = federation.work / "project"
    assert (
        "runner: pulumi destroy was stopped (Ctrl-C); left in stack sim: 2 resources "
        "(fedstack:ssh:Host site1, fedstack:ssh:Host site2); remove it with: "
        f"pulumi destroy -s sim --cwd {project}\n"
    ) in ran.err
    assert ran.err.strip().splitlines()[-1].endswith("stack sim still holds resources (see above)")


async def test_a_failed_up_is_torn_down_and_runs_nothing(tmp_path, fake_pulumi) -> None:
    project = tmp_path / "project"
    project.mkdir()
    words = [sys.executable, "-m", "runner", "--stack", "sim", "--up", "--destroy"]
    words += ["--project-dir", str(project), "--workflow", str(tmp_path / "absent.toml")]
    ran = await run(words, fake_pulumi, env={"FAKE_UP": "fail"})
    assert ran.code == EXIT_SITES_FAILED, ran.err
    assert ran.destroys() == 1
    assert "runner: stack sim: pulumi up failed: error: creating site3: quota exceeded" in ran.err
    assert not any("stack output" in c for c in ran.calls), "no run after a failed up"


async def test_destroy_needs_up(tmp_path, fake_pulumi) -> None:
    words = [sys.executable, "-m", "runner", "--stack", "sim", "--destroy"]
    ran = await run(words, fake_pulumi)
    assert ran.code == EXIT_BAD_INPUT
    assert "--destroy needs --up" in ran.err
    assert ran.calls == []


async def test_an_operation_past_its_deadline_is_stopped_and_named(
    tmp_path, fake_pulumi, monkeypatch
) -> None:
    monkeypatch.setenv("FAKE_UP", "hang")
    lines: list[str] = []

    class Lines:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    stack = PulumiStack("sim", tmp_path, stream=Lines())  # type: ignore[arg-type]
    result = await asyncio.wait_for(stack.run("up", asyncio.Event(), deadline=1.0), 30)
    assert (result.ok, result.why) == (False, "pulumi up did not finish within 1 s")
    assert "cancelled up" in fake_pulumi.read_text().splitlines()
    assert any("creating pulumi:pulumi:Stack fedstack-sim" in line for line in lines)


async def test_ctrl_c_during_up_stops_pulumi_and_tears_down_what_it_made(
    tmp_path, fake_pulumi
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    words = [sys.executable, "-m", "runner", "--stack", "sim", "--up", "--destroy"]
    words += ["--project-dir", str(project), "--workflow", str(tmp_path / "absent.toml")]
    ran = await run(
        words, fake_pulumi, interrupt_at=["creating pulumi:pulumi:Stack"], env={"FAKE_UP": "hang"}
    )
    assert ran.code == EXIT_INTERRUPTED, ran.err
    assert "cancelled up" in ran.calls, "pulumi up was told to stop, cleanly"
    assert ran.destroys() == 1
    last = ran.err.strip().splitlines()[-1]
    assert last == "runner: interrupted during `pulumi up` of stack sim; stack sim was destroyed"


async def test_up_without_a_pulumi_cli_is_bad_input(tmp_path, fake_pulumi) -> None:
    words = [sys.executable, "-m", "runner", "--stack", "sim", "--up", "--destroy"]
    ran = await run(words, fake_pulumi, env={"PATH": str(tmp_path / "empty")})
    assert (ran.code, ran.err) == (
        EXIT_BAD_INPUT,
        "runner: --up needs the Pulumi CLI on PATH (https://www.pulumi.com/docs/install/)\n",
    )
