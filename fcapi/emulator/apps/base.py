"""The one interface every emulated app implements, modelled on the engine's app contract.

A real app is a container serving `POST /setup`, `GET /status`, `GET /data`, `POST /data`.
On FeatureCloud's engine `POST /setup` returns at once and the app's states run on a thread of
their own, while the HTTP routes only read the status, hand out queued data and queue incoming
data. An emulated app has the same shape: `setup` returns at once and starts the app's thread,
which runs `work` (the local work) and then `receive` for each delivery, in the order the
deliveries came; the status is the engine's own model (`engine.status.EngineStatus`: nulls,
the memo, SMPC) and reads `running` until the app finishes. An exception on the app's thread
ends the app as the engine ends it: `finished`, state `error`, the exception's class name as
the message, the traceback in the step's log. `InProcess` answers the controller loop's calls
(`engine.driver.App`), so one loop drives twins and engine apps alike. Adding an app is adding
one module with an `APP` class.

A twin tells its driver when its thread has settled (done with everything handed to it), so
the loop reads a twin's status once it means something instead of a poll interval later; the
polling cadence is the engine's, a twin has no reason to pay it (at 100 sites on 2 cores the
twins stand in for apps that would be containers on 100 machines).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import traceback
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from fcapi.emulator.engine.status import EngineStatus

#: the memo of an engine app's first gather round (`send_data_to_coordinator` without a memo)
GATHER = "GATHERROUND1"
#: longest a twin's status waits for its thread to settle; a thread still busy then (a slow or
#: hanging app) is read as it is, and the driver's deadline takes over
SETTLE_SECONDS = 1.0
#: the SMPC settings an app's status carries when it sends a piece (the engine's defaults)
SMPC_DEFAULTS: dict[str, Any] = {"operation": "add", "serialization": "json", "shards": 0}


@dataclass(frozen=True)
class Setup:
    """Body of `POST /setup` plus the mounts (`/mnt/input`, `/mnt/output`)."""

    id: str
    coordinator: bool
    clients: list[str]
    coordinatorID: str
    input_dir: Path
    output_dir: Path


@dataclass(frozen=True)
class Outgoing:
    """One queued message and the status fields it is announced with."""

    payload: bytes
    destination: str | None
    memo: str | None
    smpc: dict[str, Any] | None


class FederatedApp(ABC):
    app_id: ClassVar[int]
    slug: ClassVar[str]
    name: ClassVar[str]

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # the status and the outbox, shared with the controller
        self._outbox: list[Outgoing] = []
        self._finished = False
        self._state: str | None = None
        self._message: str | None = None
        self._inbox: queue.SimpleQueue[tuple[str, str, bytes] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        #: where the app's own output goes (the engine's stdout: the step's log)
        self.log: Callable[[str], None] = lambda line: None
        #: called on the app's thread when it has done what it was handed (True: it ended)
        self.on_settled: Callable[[bool], None] = lambda ended: None

    def setup(self, setup: Setup) -> None:
        """`POST /setup`: remember who is who and start the app's thread; returns at once."""
        self._state = "running"
        self._thread = threading.Thread(
            target=self._run, args=(setup,), name=f"app-{self.slug}-{setup.id}", daemon=True
        )
        self._thread.start()

    @abstractmethod
    def work(self, setup: Setup) -> None:
        """The local work, on the app's thread: read inputs, queue the first message if any."""

    @abstractmethod
    def receive(self, sender: str, memo: str, data: bytes) -> None:
        """Another client's message, on the app's thread, in the order messages arrived."""

    def deliver(self, sender: str, memo: str, data: bytes) -> None:
        """`POST /data`: queue the message for the app's thread and return at once."""
        self._inbox.put((sender, memo, data))

    def stop(self) -> None:
        """The step ended: let the app's thread end once it is idle."""
        self._inbox.put(None)

    def _run(self, setup: Setup) -> None:
        try:
            self.work(setup)
            self.on_settled(False)
            while (item := self._inbox.get()) is not None:
                self.receive(*item)
                self.on_settled(False)
        except Exception as exc:
            self.log(traceback.format_exc().rstrip())
            with self._mutex:
                self._outbox.clear()
                self._finished, self._state = True, "error"
                self._message = exc.__class__.__name__
            self.on_settled(True)

    def status(self) -> EngineStatus:
        """The engine's status body: the first queued message's fields while one is queued
        (no destination: the default route; no memo: "None" on the wire), progress only once
        finished."""
        with self._mutex:
            head = self._outbox[0] if self._outbox else None
            return EngineStatus(
                available=head is not None,
                finished=self._finished and head is None,
                message=self._message,
                progress=1.0 if self._finished else None,
                state=self._state,
                destination=head.destination if head else None,
                smpc=head.smpc if head else None,
                memo=head.memo if head else None,
            )

    def data(self) -> bytes:
        """`GET /data`: hand over the oldest queued message."""
        with self._mutex:
            return self._outbox.pop(0).payload

    def send(
        self,
        payload: bytes,
        destination: str | None = None,
        *,
        memo: str | None = None,
        smpc: bool = False,
    ) -> None:
        """Queue a message; no destination: coordinator -> all, participant -> coordinator.
        With `smpc` the payload is a JSON piece that the controllers add up for the
        coordinator, who gets one package."""
        settings = dict(SMPC_DEFAULTS) if smpc else None
        with self._mutex:
            self._outbox.append(Outgoing(payload, destination or None, memo, settings))

    def finish(self, message: str = "done") -> None:
        """The app is done; the controller sees `finished` once every queued message is out."""
        with self._mutex:
            self._finished = True
            self._message = message


class InProcess:
    """An emulated app as the controller loop speaks to it (`engine.driver.App`)."""

    def __init__(self, app: FederatedApp, input_dir: Path, output_dir: Path) -> None:
        self.app, self.input_dir, self.output_dir = app, input_dir, output_dir
        self._handed = self._done = 0  # setup and deliveries given to the thread, and done
        self._settled = asyncio.Event()

    def _hand(self) -> None:
        self._handed += 1
        self._settled.clear()

    def _one_done(self, ended: bool) -> None:
        """On the event loop: the thread finished one item (or ended, leaving the rest)."""
        self._done = self._handed if ended else self._done + 1
        if self._done >= self._handed:
            self._settled.set()

    async def setup(self, body: dict[str, object]) -> None:
        clients = body["clients"]
        assert isinstance(clients, list)
        setup = Setup(
            id=str(body["id"]),
            coordinator=bool(body["coordinator"]),
            clients=[str(c) for c in clients],
            coordinatorID=str(body["coordinatorID"]),
            input_dir=self.input_dir,
            output_dir=self.output_dir,
        )
        loop = asyncio.get_running_loop()

        def settled(ended: bool) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(self._one_done, ended)

        self.app.on_settled = settled
        self._hand()
        self.app.setup(setup)

    async def status(self) -> EngineStatus:
        """The status once the thread has settled, or as it is after `SETTLE_SECONDS`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), SETTLE_SECONDS)
        return self.app.status()

    async def data(self) -> bytes:
        return self.app.data()

    async def post_data(self, sender: str, memo: str, data: bytes) -> None:
        self._hand()
        self.app.deliver(sender, memo, data)

    def exited(self) -> int | None:
        return None

    def seen(self) -> str:
        return "in-process"


@contextlib.asynccontextmanager
async def in_process(
    app: FederatedApp, input_dir: Path, output_dir: Path, on_line: Callable[[str], None]
) -> AsyncIterator[InProcess]:
    """`app` ready to be driven (its own output line by line to `on_line`); its thread ends
    with the block."""
    app.log = on_line
    try:
        yield InProcess(app, input_dir, output_dir)
    finally:
        app.stop()
