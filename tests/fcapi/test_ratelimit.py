"""The per-user token bucket: what the site can rely on, timed with a fake clock and for real."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import SecretStr

from fcapi.ratelimit import TokenBucket
from fcapi.stats import RequestStats
from fcapi.website import WebsitePool


def test_burst_then_one_every_interval(clock):
    bucket = TokenBucket(3.0, 3, clock=clock, sleep=clock.sleep)
    delays = [bucket.reserve() for _ in range(6)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3:] == pytest.approx([1 / 3, 2 / 3, 1.0])


async def test_twelve_requests_take_three_seconds_of_clock(clock):
    bucket = TokenBucket(3.0, 3, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(12):
        await bucket.acquire()
        sent.append(clock())
    assert sent[-1] - sent[0] == pytest.approx(3.0)
    stats = RequestStats()
    for t in sent:
        stats.record("a@x.org", "GET", "/api/projects/1/", 200, t)
    # a burst of 3 rides on top of 3/s inside any one second, and no more
    assert stats.max_rate(1.0)["a@x.org"] <= 3 + 2 + 1e-9
    assert stats.max_rate(3.0)["a@x.org"] <= 3 + 2 / 3 + 1e-9


async def test_idle_time_refills_only_up_to_the_burst(clock):
    bucket = TokenBucket(3.0, 3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await bucket.acquire()
    clock.now += 60  # a long pause does not bank 180 requests
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 1 / 3])


def test_pause_until_holds_the_next_request_and_drops_the_burst(clock):
    bucket = TokenBucket(3.0, 3, clock=clock, sleep=clock.sleep)
    bucket.pause_until(clock() + 5)
    assert bucket.reserve() == pytest.approx(5.0)
    assert bucket.reserve() == pytest.approx(5 + 1 / 3)


def test_configurable_rate_and_burst(clock):
    bucket = TokenBucket(10.0, 1, clock=clock, sleep=clock.sleep)
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0, 0.1, 0.2])
    with pytest.raises(ValueError):
        TokenBucket(0, 3)
    with pytest.raises(ValueError):
        TokenBucket(3, 0)


async def test_users_have_their_own_buckets():
    pool = WebsitePool(
        "http://site.test", {u: SecretStr("pw-123456") for u in ("a@x.org", "b@x.org")}
    )
    a, b = pool.client("a@x.org").limiter, pool.client("b@x.org").limiter
    assert pool.client("a@x.org").limiter is a
    assert [a.reserve() for _ in range(3)] == [0, 0, 0]
    assert b.reserve() == 0  # a's burst does not slow b
    await pool.aclose()


async def test_real_time_twelve_concurrent_acquires_take_at_least_three_seconds():
    bucket = TokenBucket(3.0, 3)
    start = time.monotonic()
    stamps: list[float] = []

    async def one():
        await bucket.acquire()
        stamps.append(time.monotonic() - start)

    await asyncio.gather(*(one() for _ in range(12)))
    assert max(stamps) >= 2.95
    assert max(stamps) < 6.0  # generous: other tests may load the machine
    assert sorted(stamps)[2] < 0.1  # the burst went out at once


async def test_a_bucket_paced_user_is_never_over_the_limit_though_one_second_shows_five(clock):
    """The politeness check the benchmark reports: bursts allowed, nothing beyond them."""
    bucket = TokenBucket(3.0, 3, clock=clock, sleep=clock.sleep)
    stats = RequestStats()
    for _ in range(30):
        await bucket.acquire()
        stats.record("a@x.org", "POST", "/api/project-tokens/1/", 200, clock())
    assert stats.max_rate(1.0)["a@x.org"] > 3  # a sliding second sees burst + rate
    assert stats.over_limit(3.0, 3)["a@x.org"] <= 1e-9
    assert stats.over_limit(3.0, 2)["a@x.org"] == pytest.approx(1.0)  # a tighter bucket: over


def test_over_limit_counts_requests_beyond_burst_plus_rate():
    stats = RequestStats()
    for i in range(10):  # ten requests inside 0.9 s
        stats.record("fast@x.org", "GET", "/api/projects/1/", 200, 50.0 + i * 0.1)
    stats.record("slow@x.org", "GET", "/api/projects/1/", 200, 50.0)
    over = stats.over_limit(3.0, 3)
    assert over["fast@x.org"] == pytest.approx(10 - 3 - 3 * 0.9)
    assert over["slow@x.org"] == pytest.approx(1 - 3)
