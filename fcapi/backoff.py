"""Jittered exponential backoff and the one polling loop fcapi waits with.

There are no fixed sleeps in fedstack: every wait is a poll that starts eager, backs off so
that a long wait costs the site few requests, and gives up at a deadline with an error that
says what it waited for. Jitter keeps many sites from polling in lockstep.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from fcapi.errors import WaitTimeout

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before attempt n+1 is drawn from `[d/2, d]`, `d = min(cap, base * factor**n)`."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 10.0

    def ceiling(self, attempt: int) -> float:
        return float(min(self.cap, self.base * self.factor ** max(0, attempt)))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        d = self.ceiling(attempt)
        r = (rng or random).random()
        return d / 2 + r * d / 2


#: retries of one request after a transport error or a 5xx
RETRY = Backoff(base=0.25, factor=2.0, cap=8.0)
#: polling a project status: quick at first, at most every 5 s (fedflow's gentle interval)
POLL = Backoff(base=0.5, factor=1.5, cap=5.0)


async def poll(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    seconds: float,
    what: str,
    policy: Backoff = POLL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    describe: Callable[[T | None], str] | None = None,
    on_poll: Callable[[T, float], None] | None = None,
) -> T:
    """Call `probe` until `done(result)`; return that result.

    Raises `WaitTimeout` once `seconds` have passed, saying `what` was awaited, for
    how long, and (through `describe`) what was seen last. `on_poll(result, elapsed)` lets a
    CLI print progress. The last sleep is cut short so the final probe lands at the deadline.
    """
    start = clock()
    deadline = start + seconds
    attempt = 0
    last: T | None = None
    while True:
        last = await probe()
        elapsed = clock() - start
        if on_poll is not None:
            on_poll(last, elapsed)
        if done(last):
            return last
        remaining = deadline - clock()
        if remaining <= 0:
            seen = f"; last seen: {describe(last)}" if describe is not None else ""
            raise WaitTimeout(f"gave up waiting for {what} after {elapsed:.1f} s{seen}")
        await sleep(min(policy.delay(attempt, rng), remaining))
        attempt += 1


class Again(Exception):
    """Raised inside a `retry` call for a failure worth another attempt that is not itself
    an error the caller should see: a 5xx answer, a transport hiccup.

    `retry` waits at least `pause` before the next attempt (a server's `Retry-After`), and
    raises `error` when no attempt is left, so the caller sees its own kind of failure.
    """

    def __init__(self, error: Exception, pause: float = 0.0) -> None:
        super().__init__(str(error))
        self.error = error
        self.pause = pause


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    retry_on: Callable[[BaseException], bool],
    attempts: int | None = None,
    seconds: float | None = None,
    policy: Backoff = RETRY,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    before_sleep: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Call `call` until it returns, retrying the errors `retry_on` accepts; the last one is raised.

    The one retry loop of fedstack for transport hiccups and dials (tenacity does the looping):
    it stops after `attempts` calls or once `seconds` have passed, whichever comes first, and
    waits `policy`'s jittered delays in between, the last one cut short at the deadline.
    `before_sleep(attempt, error, pause)` lets a caller say what it is waiting for. To retry
    on an answer rather than an error, raise an `Again` carrying the error to end with.
    """
    stops: list[tenacity.stop.stop_base] = []
    if attempts is not None:
        stops.append(tenacity.stop_after_attempt(attempts))
    if seconds is not None:
        stops.append(tenacity.stop_after_delay(seconds))
    if not stops:
        raise ValueError("retry needs attempts or seconds, or it could go on forever")
    start = time.monotonic()

    def wait(state: tenacity.RetryCallState) -> float:
        if attempts is not None and state.attempt_number >= attempts:
            return 0.0  # tenacity asks before it stops: no pause follows, so draw no jitter
        pause = policy.delay(state.attempt_number - 1)
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, Again):
            pause = max(pause, error.pause)
        if seconds is not None:
            pause = min(pause, max(0.0, start + seconds - time.monotonic()))
        return pause

    def announce(state: tenacity.RetryCallState) -> None:
        if before_sleep is not None and state.outcome is not None and state.next_action:
            error = state.outcome.exception()
            if error is not None:
                before_sleep(state.attempt_number, error, state.next_action.sleep)

    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_any(*stops),
        wait=wait,
        retry=tenacity.retry_if_exception(retry_on),
        sleep=sleep,
        before_sleep=announce,
        reraise=True,
    )

    async def attempt() -> T:  # tenacity would not await what a lambda returns
        return await call()

    try:
        return await retrying(attempt)
    except Again as again:
        raise again.error from None
