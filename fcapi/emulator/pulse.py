"""An edge-triggered wake-up for long polls: waiters sleep until something changes.

Waiting by event (never by a fixed sleep) is what lets 100 controllers idle cheaply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Pulse:
    """Wakes every current waiter on `bump()`; each wait has its own deadline."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def bump(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def wait(self, seconds: float) -> Coroutine[Any, Any, bool]:
        """True when bumped before `seconds` passed.

        The event is taken when `wait` is called, not when the coroutine first runs, so a
        bump between a caller's check and its task starting is not lost.
        """
        return _wait(self._event, seconds)


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True
