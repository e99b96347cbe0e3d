"""The one interface every emulated app implements, modelled on the app container contract.

A real app is a container serving `POST /setup`, `GET /status`, `GET /data`, `POST /data`;
the controller polls status, fetches data when `available` and delivers it to the
destination. Here the same four calls are methods, so the controller's driver loop is the
real one and adding an app is adding one module with an `APP` class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel


@dataclass(frozen=True)
class Setup:
    """Body of `POST /setup` plus the mounts (`/mnt/input`, `/mnt/output`)."""

    id: str
    coordinator: bool
    clients: list[str]
    coordinatorID: str
    input_dir: Path
    output_dir: Path


class AppStatus(BaseModel):
    """Body of `GET /status`."""

    available: bool = False
    finished: bool = False
    message: str = ""
    progress: float = 0.0
    state: Literal["running", "error", "action_required"] = "running"
    destination: str = ""
    smpc: bool = False
    dp: bool = False
    memo: str = ""


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

    def status(self) -> AppStatus:
        dest = self._outbox[0][1] if self._outbox else ""
        return AppStatus(
            available=bool(self._outbox),
            finished=self._finished,
            destination=dest,
            message=self._message,
            progress=1.0 if self._finished else 0.5,
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
