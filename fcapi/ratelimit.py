"""A per-user token bucket, so that featurecloud.ai sees at most `rate` requests/s per account.

The site publishes no limit; fedflow's 3 requests/s with a burst of 3 is what it has been
seen to tolerate. The bucket is kept as a GCRA schedule (a "theoretical arrival time"):
`reserve` is a pure computation on the clock, so concurrent callers each get their own slot
without a lock, and the timing is tested with a fake clock instead of real waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """At most `burst` requests at once, then one every `1 / rate` seconds."""

    def __init__(
        self,
        rate: float = 3.0,
        burst: int = 3,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._tat = -float("inf")  # theoretical arrival time of the next request

    def reserve(self) -> float:
        """Take the next slot; return how many seconds to wait before using it."""
        now = self._clock()
        tat = max(self._tat, now)
        delay = tat - self._tolerance - now
        self._tat = tat + self._interval
        return delay if delay > 1e-9 else 0.0  # float dust is not a wait

    def pause_until(self, when: float) -> None:
        """Hold every later request until `when` (a `Retry-After`), with no burst after it:
        a site that said "slow down" gets a slow restart."""
        self._tat = max(self._tat, when + self._tolerance)

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)
