"""The controller's loop over one app, as FeatureCloud's controller drives a container.

`POST /setup` (with `coordinator` and, for apps older than the engine, `master`), then
`GET /status` every `poll` seconds, or sooner when mail comes (the relay's receive waits for
mail or the poll interval, whichever comes first); `GET /data` only right after the status that
announced it (the engine refuses any other order), one call at a time; the data goes where
`destination` says, or by the default route (the website's relay: coordinator to every
participant, whose broadcast never comes back to it; participant to the coordinator), under the
memo exactly as the app set it ("None" when unset). Deliveries reach the app in the order they
arrive, as on the platform. SMPC pieces go to the coordinator's controller, which hands its app
one package; DP is refused, since the emulator adds no noise. `finished` with state `error`
fails the step with the app's message; the run's deadline ends an app that hangs.

The same loop drives an engine app's process over HTTP (`HttpApp`) and an in-process twin
(`fcapi.emulator.apps.base.InProcess`): both answer the four calls of the app API.
"""

from __future__ import annotations

import contextlib
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from fcapi.emulator.engine import smpc
from fcapi.emulator.engine.process import AppProcess
from fcapi.emulator.engine.status import EngineStatus, StatusError, parse_status
from fcapi.emulator.run_errors import AppFailed, Stopped

#: seconds between two GET /status, as the real controller polls (1-2 s)
POLL = 1.0


class Relay(Protocol):
    """How a controller sends an app's data to other sites and receives theirs: the website's
    relay (`RelayClient`) in a project, the test bed's in-memory hub offline."""

    async def send(
        self, pid: int, run: int, step: int, data: bytes, destination: str, memo: str
    ) -> None: ...

    async def receive(
        self, pid: int, run: int, step: int, wait: float
    ) -> tuple[str, int, list[tuple[str, str, bytes]]]: ...


class App(Protocol):
    """The app API as the controller calls it: `POST /setup`, `GET /status`, `GET /data`,
    `POST /data?client=&memo=` (the memo as the sender's app set it)."""

    async def setup(self, body: dict[str, object]) -> None: ...

    async def status(self) -> EngineStatus: ...

    async def data(self) -> bytes: ...

    async def post_data(self, sender: str, memo: str, data: bytes) -> None: ...

    def exited(self) -> int | None:
        """The exit status of an app that ended without finishing, else None."""

    def seen(self) -> str:
        """What the loop saw of the app, for the step's log."""


@dataclass
class StepRun:
    """What the loop needs of the run: who is who, the relay, the deadline, the log."""

    relay: Relay
    pid: int
    run: int
    step: int
    me: str
    coordinator: str
    clients: list[str]
    site_name: str
    deadline: float
    run_timeout: float
    log: Callable[[str, str], None]
    poll: float = POLL

    @property
    def is_coordinator(self) -> bool:
        return self.me == self.coordinator


async def drive(app: App, s: StepRun) -> None:
    """Run the app to its end; AppFailed, TimeoutError or Stopped when it does not finish."""
    await app.setup(setup_body(s))
    aggregator = smpc.Aggregator(list(s.clients))
    last = EngineStatus()
    while True:
        last = await app.status()
        if last.available:
            await _forward(app, last, s, aggregator)
            continue
        if last.finished:
            if last.state == "error":
                raise AppFailed(f"the app ended in state error: {last.message or 'no message'}")
            s.log("info", f"step {s.step}: the app finished ({app.seen()})")
            return
        if app.exited() is not None:
            raise AppFailed(f"the app's process exited with status {app.exited()} unfinished")
        remaining = s.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"site {s.site_name!r}: the app did not finish step {s.step} within the run's "
                f"deadline ({s.run_timeout:g} s); it last reported {last.describe()}"
            )
        status, current, msgs = await s.relay.receive(
            s.pid, s.run, s.step, wait=min(s.poll, remaining)
        )
        if status != "running" or current != s.run:
            raise Stopped(status)
        for sender, memo, data in msgs:
            await _deliver(app, s, sender, memo, data, aggregator)


def setup_body(s: StepRun) -> dict[str, object]:
    coordinator = s.is_coordinator
    return {
        "id": s.me,
        "coordinator": coordinator,
        "master": coordinator,
        "clients": list(s.clients),
        "coordinatorID": s.coordinator,
    }


@contextlib.asynccontextmanager
async def engine_app(
    app_dir: Path, python: Path, input_dir: Path, output_dir: Path, on_line: Callable[[str], None]
) -> AsyncIterator[HttpApp]:
    """The app of `app_dir` as a started process (its output line by line to `on_line`),
    stopped with every process of it when the block ends."""
    process = AppProcess(app_dir, python, input_dir, output_dir, on_line)
    try:
        await process.start()
        yield HttpApp(process)
    finally:
        await process.stop()


class HttpApp:
    """An engine app's process, spoken to over its `/api` routes; one call at a time."""

    def __init__(self, process: AppProcess) -> None:
        self.process = process
        self.content_types: Counter[str] = Counter()

    async def setup(self, body: dict[str, object]) -> None:
        await self._call("POST", "/setup", json=body)

    async def status(self) -> EngineStatus:
        r = await self._call("GET", "/status")
        self.content_types[r.headers.get("content-type", "none").split(";")[0]] += 1
        try:
            return parse_status(r.text)
        except StatusError as exc:
            raise AppFailed(str(exc)) from None

    async def data(self) -> bytes:
        return (await self._call("GET", "/data")).content

    async def post_data(self, sender: str, memo: str, data: bytes) -> None:
        """The engine files data under `quote(memo)` after the web framework decoded the query
        once, so the memo goes quoted (and is encoded once more on the wire)."""
        params = {"client": sender, "memo": urllib.parse.quote(memo)}
        await self._call("POST", "/data", params=params, content=data)

    def exited(self) -> int | None:
        return self.process.exited()

    def seen(self) -> str:
        types = ", ".join(f"{n} {t}" for t, n in sorted(self.content_types.items()))
        return f"statuses seen: {types}"

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One request to the app; a refused connection or an error answer fails the step."""
        client = self.process.client
        try:
            r = await client.request(method, path, json=json, params=params, content=content)
        except httpx.TransportError as exc:
            raise AppFailed(f"{method} {path} to the app failed: {exc!r}") from None
        if r.status_code != 200:
            raise AppFailed(
                f"{method} {path}: the app answered HTTP {r.status_code}: {r.text[:300]}"
            )
        return r


async def _forward(app: App, st: EngineStatus, s: StepRun, aggregator: smpc.Aggregator) -> None:
    """Take the announced data and send it on, as its status says."""
    if st.dp is not None:
        raise AppFailed(
            "the app asked for differential privacy (dp in its status): the emulated "
            "controller adds no DP noise, so it refuses to send the data unprotected"
        )
    data = await app.data()
    memo = st.wire_memo
    if st.smpc is not None:
        operation = str(st.smpc.get("operation") or "add")
        if s.is_coordinator:
            await _aggregate(app, s, aggregator, memo, s.me, data, operation)
        else:
            await s.relay.send(
                s.pid, s.run, s.step, smpc.envelope(data, operation), s.coordinator, memo
            )
        s.log("debug", f"SMPC piece of {len(data)} bytes (memo {memo!r}) for the coordinator")
        return
    destination = st.destination or ""
    if destination == s.me:
        await app.post_data(s.me, memo, data)
    else:
        await s.relay.send(s.pid, s.run, s.step, data, destination, memo)
    s.log(
        "debug", f"sent {len(data)} bytes to {destination or 'the default route'} (memo {memo!r})"
    )


async def _deliver(
    app: App,
    s: StepRun,
    sender: str,
    memo: str,
    data: bytes,
    aggregator: smpc.Aggregator,
) -> None:
    piece = smpc.opened(data)
    if piece is not None:
        await _aggregate(app, s, aggregator, memo, sender, *piece)
        return
    s.log("debug", f"received {len(data)} bytes from {sender} (memo {memo!r})")
    await app.post_data(sender, memo, data)


async def _aggregate(
    app: App,
    s: StepRun,
    aggregator: smpc.Aggregator,
    memo: str,
    sender: str,
    piece: bytes,
    operation: str,
) -> None:
    try:
        package = aggregator.add(memo, sender, piece, operation)
    except ValueError as exc:
        raise AppFailed(f"SMPC aggregation for memo {memo!r}: {exc}") from None
    if package is not None:
        s.log("debug", f"SMPC: {len(s.clients)} pieces for memo {memo!r} -> one package")
        await app.post_data(s.me, memo, package)
