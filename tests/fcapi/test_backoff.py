"""Backoff delays and the polling loop: bounded, jittered, and honest about deadlines."""

from __future__ import annotations

import random

import pytest

from fcapi.backoff import POLL, Backoff, poll
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
