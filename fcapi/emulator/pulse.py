"""An edge-triggered wake-up for long polls: waiters sleep until something changes.

Waiting by event (never by a fixed sleep) is what lets 100 controllers idle cheaply.
"""

from __future__ import annotations

import asyncio


class Pulse:
    """Wakes every current waiter on `bump()`; each wait has its own deadline."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def bump(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        """True when bumped before `seconds` passed."""
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return False
        return True
