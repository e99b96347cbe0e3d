"""Requests that must survive a transient failure, and the deadline every request ends by.

Against the emulated website over real HTTP: a 503 there is drawn before the handler runs,
as a proxy in front of a restarting site answers. A lost answer (the site acted, the answer
never came) is a transport that forwards the request and then drops the connection.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from fcapi.backoff import Backoff
from fcapi.controller import ControllerClient
from fcapi.errors import WaitTimeout
from fcapi.http import RetryPolicy, deadline_scope
from fcapi.website import WebsiteClient

from .conftest import PASSWORD, admin, new_account

QUICK = RetryPolicy(backoff=Backoff(0.01, 2, 0.05))


def seed_failing_first(rate: float, then_ok: int) -> int:
    """A seed whose first 5xx draw fails and whose next `then_ok` draws pass."""
    for seed in range(10_000):
        rng = random.Random(seed)
        draws = [rng.random() < rate for _ in range(1 + then_ok)]
        if draws[0] and not any(draws[1:]):
            return seed
    raise AssertionError("no such seed")


def client(site_url: str, user: str, **kw: object) -> WebsiteClient:
    return WebsiteClient(site_url, user, SecretStr(PASSWORD), rate=30, burst=10, **kw)  # type: ignore[arg-type]


async def test_a_503_on_login_is_retried(site):
    email = await new_account(site.url)
    seed = seed_failing_first(0.5, then_ok=3)
    await admin(site.url, "PUT", "/_emulator/faults", {"error_rate": 0.5, "seed": seed})
    async with client(site.url, email, retry=QUICK) as c:
        await c.login()
        assert c.logins == 1
    await admin(site.url, "PUT", "/_emulator/faults", {"error_rate": 0})
    logins = [s for s in c.stats.by_endpoint() if "login" in s]
    assert c.stats.by_endpoint()[logins[0]] == 2  # the 503, then the login


async def project_of(site_url: str) -> tuple[str, int]:
    email = await new_account(site_url)
    async with client(site_url, email) as c:
        project = await c.create_project("tokens")
    return email, project.id


async def test_a_503_on_token_creation_is_retried_and_makes_one_token(site):
    email, pid = await project_of(site.url)
    async with client(site.url, email, retry=QUICK) as c:
        known = {t.id for t in await c.list_tokens(pid)}
        seed = seed_failing_first(0.5, then_ok=3)
        await admin(site.url, "PUT", "/_emulator/faults", {"error_rate": 0.5, "seed": seed})
        token = await c.create_token(pid, known=known)
        await admin(site.url, "PUT", "/_emulator/faults", {"error_rate": 0})
        tokens = await c.list_tokens(pid)
    assert [t.id for t in tokens] == [token.id] and not token.used


class LosesOneAnswer(httpx.AsyncBaseTransport):
    """Forwards every request; the first POST's answer is dropped after the site acted."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and "project-tokens" in request.url.path and not self.lost:
            self.lost += 1
            await response.aclose()
            raise httpx.ReadError("connection reset while reading the answer", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_token_whose_answer_was_lost_is_found_not_made_twice(site):
    email, pid = await project_of(site.url)
    transport = LosesOneAnswer()
    async with client(site.url, email, retry=QUICK, transport=transport) as c:
        token = await c.create_token(pid)
        tokens = await c.list_tokens(pid)
    assert transport.lost == 1
    assert [t.id for t in tokens] == [token.id]  # the one made, found, not a second


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A server that accepts connections and reads requests but never answers (a website
    that is paused)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.close()


async def test_every_request_ends_by_the_deadline_of_its_scope(silent_server):
    started = time.monotonic()
    async with WebsiteClient(silent_server, "a@example.org", SecretStr("pw"), timeout=30) as c:
        with deadline_scope(time.monotonic() + 1.5), pytest.raises(WaitTimeout) as info:
            await c.get_project(1)
    assert time.monotonic() - started < 3.0
    assert f"no answer from {silent_server} before the deadline" in str(info.value)
    assert "GET /api/projects/{id}/" in str(info.value)
    started = time.monotonic()
    async with ControllerClient(silent_server, timeout=30) as ctl:
        with deadline_scope(time.monotonic() + 1.0), pytest.raises(WaitTimeout) as info:
            await ctl.project_runs(1)
    assert time.monotonic() - started < 2.5
    assert f"the controller at {silent_server}" in str(info.value)
    assert "GET /project-runs/" in str(info.value)
