"""One `pulumi up` or `pulumi destroy`, run as the CLI and watched through its event log.

Why not the Automation API's `Stack.up()`/`destroy()`: they block a thread until the CLI exits
and give no handle on the child, so neither a deadline nor a Ctrl-C can stop it, and the child
inherits the runner's whole environment (FeatureCloud passwords included). Run here, the CLI
gets the scrubbed environment, a session of its own (a Ctrl-C reaches it only when the runner
passes it on, so the runner decides what an interrupt means), a deadline, and SIGINT first
(pulumi finishes what is in flight and saves its state) before anything harsher. Its engine
events (`--event-log`, JSON lines) show progress per resource and tell what the stack holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from fcapi.credentials import scrubbed_environ
from fcapi.errors import one_line
from runner.errors import RunnerError

Verb = Literal["up", "destroy"]
#: how long a whole `pulumi up` or `pulumi destroy` may take (VMs booting, images uploading)
OPERATION_DEADLINE = 3600.0
#: how long pulumi may take to stop once told (it finishes the operations in flight first)
CANCEL_GRACE = 30.0
#: how long a killed pulumi may take to be gone
KILL_GRACE = 5.0
POLL = 0.1
#: what each step is called while it runs and once it is done
WORDS = {
    "create": ("creating", "created"),
    "update": ("updating", "updated"),
    "delete": ("deleting", "deleted"),
    "replace": ("replacing", "replaced"),
    "create-replacement": ("creating the replacement of", "created the replacement of"),
    "delete-replaced": ("deleting the replaced", "deleted the replaced"),
    "read": ("reading", "read"),
    "refresh": ("refreshing", "refreshed"),
    "import": ("importing", "imported"),
    "same": ("", "unchanged"),
}
#: steps after which the resource is no longer in the stack
GONE = {"delete", "discard", "read-discard"}


class StackError(RunnerError):
    """pulumi could not bring the stack up or down; one line saying which and why."""


@dataclass
class Result:
    """How one operation ended: `ok`, or why not (`stopped` when it was told to stop)."""

    ok: bool
    why: str = ""
    stopped: bool = False


@dataclass
class Resources:
    """The stack's resources as the events told them: urn -> type, the deleted ones removed."""

    present: dict[str, str] = field(default_factory=dict)

    def see(self, op: str, urn: str, kind: str) -> None:
        if op in GONE:
            self.present.pop(urn, None)
        elif urn:
            self.present[urn] = kind

    def left(self, limit: int = 8) -> str:
        """`3 resources (fedstack:libvirt:Vm site1, ...)`, the stack itself not counted."""
        names = [f"{k} {_name(u)}" for u, k in self.present.items() if k != "pulumi:pulumi:Stack"]
        if not names:
            return "no resources seen"
        shown = ", ".join(names[:limit]) + (
            f" and {len(names) - limit} more" if names[limit:] else ""
        )
        return f"{len(names)} resource{'s' if len(names) != 1 else ''} ({shown})"


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


class PulumiStack:
    """A stack operated by the pulumi CLI from `work_dir`; progress lines go to `stream`."""

    def __init__(self, name: str, work_dir: Path, *, stream: TextIO | None = None) -> None:
        self.name = name
        self.work_dir = work_dir
        self.stream = stream if stream is not None else sys.stderr
        self.resources = Resources()
        self._last_error = ""

    @property
    def destroy_command(self) -> str:
        """What a user runs to remove what a run left."""
        return f"pulumi destroy -s {self.name} --cwd {self.work_dir}"

    def say(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{stamp} stack {self.name} {text}", file=self.stream, flush=True)

    async def run(
        self, verb: Verb, stop: asyncio.Event, *, deadline: float = OPERATION_DEADLINE
    ) -> Result:
        """`pulumi <verb>` to its end, or until `stop` is set or `deadline` seconds pass."""
        self._last_error = ""
        with tempfile.TemporaryDirectory(prefix="fedstack-pulumi-") as tmp:
            events, output = Path(tmp) / "events.jsonl", Path(tmp) / "output.txt"
            argv = ["pulumi", "--non-interactive", verb, "--yes", "--skip-preview"]
            argv += ["--stack", self.name, "--event-log", str(events)]
            sink = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                proc = await _spawn(argv, self.work_dir, sink)
            except OSError as exc:
                raise StackError(f"cannot run `pulumi {verb}`: {exc.strerror or exc}") from None
            finally:
                os.close(sink)
            self.say(f"{verb}: pulumi started (pid {proc.pid})")
            tail = _Tail(events)
            try:
                ended = await self._watch(proc, tail, stop, deadline)
            except BaseException:
                await _kill(proc)  # the runner itself is going: pulumi must not outlive it
                raise
            self._show(tail.lines())
            return self._result(verb, proc.returncode, ended, output, deadline)

    async def _watch(
        self, proc: asyncio.subprocess.Process, tail: _Tail, stop: asyncio.Event, deadline: float
    ) -> str:
        """Show events while pulumi runs; "exited", "stopped" or "deadline"."""
        end = time.monotonic() + deadline
        waiter = asyncio.ensure_future(proc.wait())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not waiter.done():
                await asyncio.wait({waiter, stopper}, timeout=POLL)
                self._show(tail.lines())
                if waiter.done():
                    break
                if stop.is_set() or time.monotonic() > end:
                    ended = "stopped" if stop.is_set() else "deadline"
                    await self._cancel(proc, tail)
                    return ended
            return "exited"
        finally:
            stopper.cancel()
            waiter.cancel()

    async def _cancel(self, proc: asyncio.subprocess.Process, tail: _Tail) -> None:
        """SIGINT (pulumi stops cleanly, saving its state), then SIGKILL after a grace."""
        _signal(proc, signal.SIGINT)
        end = time.monotonic() + CANCEL_GRACE
        while proc.returncode is None and time.monotonic() < end:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), POLL)
            self._show(tail.lines())
        if proc.returncode is None:
            self.say(f"pulumi did not stop within {CANCEL_GRACE:g} s of SIGINT: killed")
            await _kill(proc)

    def _result(
        self, verb: Verb, code: int | None, ended: str, output: Path, deadline: float
    ) -> Result:
        if ended == "stopped":
            return Result(False, f"pulumi {verb} was stopped (Ctrl-C)", stopped=True)
        if ended == "deadline":
            return Result(False, f"pulumi {verb} did not finish within {deadline:g} s")
        if code == 0:
            self.say(f"{verb}: done")
            return Result(True)
        why = self._last_error or _last_line(output) or f"exit status {code}"
        return Result(False, f"pulumi {verb} failed: {why}")

    def _show(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            for key, done in (("resourcePreEvent", False), ("resOutputsEvent", True)):
                if key in event:
                    self._step(event[key].get("metadata") or {}, done)
            if "resOpFailedEvent" in event:
                meta = event["resOpFailedEvent"].get("metadata") or {}
                self.say(
                    f"{meta.get('op', '?')} failed: {meta.get('type')} {_name(meta.get('urn', ''))}"
                )
            diagnostic = event.get("diagnosticEvent") or {}
            if diagnostic.get("severity") == "error":
                message = one_line(str(diagnostic.get("message", "")))[:300]
                if message:
                    self._last_error = message
                    self.say(f"error: {message}")

    def _step(self, meta: dict[str, Any], done: bool) -> None:
        op, urn, kind = str(meta.get("op", "")), str(meta.get("urn", "")), str(meta.get("type", ""))
        running, finished = WORDS.get(op, (op, f"{op} done"))
        if done:
            self.resources.see(op, urn, kind)
        word = finished if done else running
        if word:
            self.say(f"{word} {kind} {_name(urn)}")


class _Tail:
    """The event log's complete lines as they are written (pulumi may not have made it yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def lines(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *whole, self.partial = (self.partial + data).split(b"\n")
        events = []
        for line in whole:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events


async def _spawn(argv: list[str], cwd: Path, sink: int) -> asyncio.subprocess.Process:
    """pulumi in a session of its own, with the scrubbed environment, output to `sink`."""
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=sink,
        stderr=asyncio.subprocess.STDOUT,
        env={**scrubbed_environ(featurecloud_only=True), "PULUMI_SKIP_UPDATE_CHECK": "true"},
        start_new_session=True,
    )


def _signal(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    _signal(proc, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(proc.wait()), KILL_GRACE)


def _last_line(output: Path) -> str:
    try:
        text = output.read_text(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return one_line(lines[-1])[:300] if lines else ""
