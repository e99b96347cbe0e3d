"""The one interface every emulated app implements, modelled on the app container contract.

A real app is a container serving `POST /setup`, `GET /status`, `GET /data`, `POST /data`;
the controller polls status, fetches data when `available` and delivers it to the
destination. Here the same four calls are methods, and the status is the engine's own model
(`engine.status.EngineStatus`, nullable fields), so adding an app is adding one module with an
`APP` class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fcapi.emulator.engine.status import EngineStatus


@dataclass(frozen=True)
class Setup:
    """Body of `POST /setup` plus the mounts (`/mnt/input`, `/mnt/output`)."""

    id: str
    coordinator: bool
    clients: list[str]
    coordinatorID: str
    input_dir: Path
    output_dir: Path


class FederatedApp(ABC):
    app_id: ClassVar[int]
    slug: ClassVar[str]
    name: ClassVar[str]

    def __init__(self) -> None:
        self._outbox: list[tuple[bytes, str]] = []
        self._finished = False
        self._message = ""

    @abstractmethod
    def setup(self, setup: Setup) -> None:
        """Read inputs and do the local work; queue the first message if any."""

    @abstractmethod
    def receive(self, sender: str, memo: str, data: bytes) -> None:
        """`POST /data`: another client's message arrived."""

    def status(self) -> EngineStatus:
        """The engine's status body: nulls where the engine has them (no destination: the
        default route; no memo: "None" on the wire; progress only once finished)."""
        dest = self._outbox[0][1] if self._outbox else ""
        return EngineStatus(
            available=bool(self._outbox),
            finished=self._finished,
            destination=dest or None,
            message=self._message or None,
            progress=1.0 if self._finished else None,
        )

    def data(self) -> bytes:
        """`GET /data`: hand over the oldest queued message."""
        payload, _ = self._outbox.pop(0)
        return payload

    def send(self, payload: bytes, destination: str = "") -> None:
        """Queue a message; no destination: coordinator -> all, participant -> coordinator."""
        self._outbox.append((payload, destination))

    def finish(self, message: str = "done") -> None:
        self._finished = True
        self._message = message
