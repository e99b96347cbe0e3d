"""Backoff delays, the polling loop and the retry helper: bounded, jittered, and honest."""

from __future__ import annotations

import random

import pytest

from fcapi.backoff import POLL, Again, Backoff, poll, retry
from fcapi.errors import ExitCode, WaitTimeout


def test_delays_grow_to_the_cap_with_jitter_inside_half_to_full():
    policy = Backoff(base=0.5, factor=2, cap=4)
    rng = random.Random(7)
    assert [policy.ceiling(n) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]
    for n in range(8):
        for _ in range(50):
            d = policy.delay(n, rng)
            assert policy.ceiling(n) / 2 <= d <= policy.ceiling(n)


def test_jitter_spreads_pollers():
    rng = random.Random(1)
    delays = {round(POLL.delay(3, rng), 6) for _ in range(20)}
    assert len(delays) > 10


def test_polls_are_gentle_at_most_every_five_seconds():
    assert POLL.ceiling(100) == 5.0


async def test_poll_returns_first_done_result(clock):
    seen = iter(["prepare", "prepare", "running", "finished"])

    async def probe():
        return next(seen)

    polls = []
    result = await poll(
        probe,
        lambda s: s == "finished",
        seconds=60,
        what="x",
        clock=clock,
        sleep=clock.sleep,
        on_poll=lambda r, elapsed: polls.append(r),
    )
    assert result == "finished"
    assert polls == ["prepare", "prepare", "running", "finished"]
    assert len(clock.sleeps) == 3
    assert clock.sleeps[0] < clock.sleeps[-1]


async def test_poll_deadline_names_what_and_how_long_and_last_seen(clock):
    calls = 0

    async def probe():
        nonlocal calls
        calls += 1
        return "prepare"

    with pytest.raises(WaitTimeout) as info:
        await poll(
            probe,
            lambda s: False,
            seconds=30,
            what="project 7 to reach status 'finished'",
            clock=clock,
            sleep=clock.sleep,
            describe=lambda s: f"status {s!r}",
        )
    text = str(info.value)
    assert "project 7 to reach status 'finished'" in text
    assert "30.0 s" in text
    assert "status 'prepare'" in text
    assert info.value.exit_code == ExitCode.TIMEOUT
    # never sleeps past the deadline, and probes once more at it
    assert clock.now - 1000.0 == pytest.approx(30.0)
    assert calls <= 15  # backs off instead of hammering


async def test_poll_with_zero_timeout_probes_once(clock):
    calls = 0

    async def probe():
        nonlocal calls
        calls += 1
        return 1

    with pytest.raises(WaitTimeout):
        await poll(probe, lambda r: False, seconds=0, what="x", clock=clock, sleep=clock.sleep)
    assert calls == 1
    assert (
        await poll(probe, lambda r: True, seconds=0, what="x", clock=clock, sleep=clock.sleep) == 1
    )


async def test_retry_awaits_a_lambda_and_stops_at_the_attempts(clock):
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("reset")
        return "ok"

    got = await retry(
        lambda: flaky(),
        retry_on=lambda e: isinstance(e, ConnectionError),
        attempts=3,
        policy=Backoff(0.5, 2, 4),
        sleep=clock.sleep,
    )
    assert got == "ok" and calls == 3
    assert 0.25 <= clock.sleeps[0] <= 0.5 and 0.5 <= clock.sleeps[1] <= 1.0
    calls = 0
    with pytest.raises(ConnectionError):
        await retry(flaky, retry_on=lambda e: False, attempts=5, sleep=clock.sleep)
    assert calls == 1  # an error retry_on refuses is raised at once


async def test_again_waits_at_least_its_pause_and_raises_its_error_when_spent(clock):
    calls = 0

    async def busy() -> None:
        nonlocal calls
        calls += 1
        raise Again(LookupError(f"busy {calls}"), pause=7.0)

    with pytest.raises(LookupError, match="busy 3") as info:
        await retry(
            busy,
            retry_on=lambda e: isinstance(e, Again),
            attempts=3,
            policy=Backoff(0.5, 2, 4),
            sleep=clock.sleep,
        )
    assert calls == 3
    assert clock.sleeps == [7.0, 7.0]
    assert info.value.__suppress_context__


async def test_retry_needs_a_bound():
    async def never() -> None:
        return None

    with pytest.raises(ValueError):
        await retry(never, retry_on=lambda e: True)
