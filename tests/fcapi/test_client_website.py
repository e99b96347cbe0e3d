"""The website client against the emulator over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import SecretStr

from fcapi.backoff import Backoff
from fcapi.errors import (
    AuthError,
    Conflict,
    MissingCredentials,
    NotFound,
    PermissionDenied,
    TransportError,
    WaitTimeout,
)
from fcapi.http import RetryPolicy
from fcapi.stats import RequestStats
from fcapi.website import WebsiteClient, WebsitePool

from .conftest import PASSWORD, admin, new_account, new_email

FAST_RETRY = RetryPolicy(attempts=3, backoff=Backoff(0.01, 2, 0.05))


def client(site, user, **kw):
    """A client that is quick where politeness is not what a test is about."""
    kw.setdefault("rate", 30.0)
    kw.setdefault("burst", 10)
    return WebsiteClient(site.url, user, SecretStr(PASSWORD), **kw)


async def test_signup_login_site_and_one_login_per_client(site):
    email = new_email()
    user = await WebsiteClient.signup(site.url, email, SecretStr(PASSWORD), "Ada", "Lovelace")
    assert user.email == email
    await admin(site.url, "DELETE", "/_emulator/requests")
    async with client(site, email) as c:
        with pytest.raises(NotFound):
            await c.get_site()
        created = await c.ensure_site("Ada's lab")
        again = await c.ensure_site("another name")
        assert again.id == created.id and again.name == "Ada's lab"
        assert created.token
        info = await c.user_info()
        assert info.email == email
        assert c.logins == 1
    counts = await admin(site.url, "GET", "/_emulator/requests")
    assert counts["by_endpoint"]["POST /api/auth/login/"] == 1
    assert counts["total"] == c.stats.total


async def test_wrong_password_is_an_auth_error_naming_the_user(site):
    email = await new_account(site.url)
    async with WebsiteClient(site.url, email, SecretStr("not-the-password")) as c:
        with pytest.raises(AuthError) as info:
            await c.get_project(1)
    assert email in str(info.value)
    assert "not-the-password" not in str(info.value) + repr(info.value)


async def test_apps_and_library(site):
    email = await new_account(site.url)
    async with client(site, email) as c:
        apps = await c.apps()
        assert {a.slug: a.id for a in apps}["mean-app"] == 66
        assert (await c.app_by_slug("mean-app")).id == 66
        with pytest.raises(NotFound, match="mean-app"):
            await c.app_by_slug("no-such-app")
        assert all(a.id != 66 for a in await c.library())
        assert await c.ensure_in_library(66) is True
        assert await c.ensure_in_library(66) is False
        assert [a.id for a in await c.library()] == [66]
        await c.remove_from_library(66)
        assert await c.library() == []
        # the runner's way: one request per add, a repeated add harmless
        before = c.stats.total
        await c.add_to_library(66)
        await c.add_to_library(66)
        assert c.stats.total - before == 2
        assert [a.id for a in await c.library()] == [66]


async def test_project_lifecycle_tokens_roles_and_refusals(site):
    coord_email, part_email = await new_account(site.url), await new_account(site.url)
    async with client(site, coord_email) as coord, client(site, part_email) as part:
        await coord.ensure_in_library(66)
        project = await coord.create_project("lifecycle", "a test")
        assert project.status == ""
        project = await coord.set_workflow(project.id, [66])
        assert project.status == "ready"
        assert project.workflow[0].federatedApp.id == 66
        fetched = await coord.get_project(project.id)
        assert fetched.role == "coordinator" and fetched.name == "lifecycle"
        assert project.id in [p.id for p in await coord.list_projects()]

        token, spare = await coord.create_token(project.id), await coord.create_token(project.id)
        assert {t.id for t in await coord.list_tokens(project.id)} >= {token.id, spare.id}
        await coord.delete_token(spare.id)
        assert spare.id not in {t.id for t in await coord.list_tokens(project.id)}

        membership = await part.join(token.token)
        assert membership.project == project.id
        seen = await part.get_project(project.id)
        assert seen.role != "coordinator"
        # tokens are single use; the error never shows the token
        with pytest.raises((Conflict, NotFound)) as info:
            await part.join(token.token)
        assert token.token not in str(info.value) + repr(info.value)

        # only the coordinator may start preparing
        with pytest.raises(PermissionDenied) as denied:
            await part.set_status(project.id, "prepare")
        assert "refused" in str(denied.value) and part_email in str(denied.value)
        prepared = await coord.set_status(project.id, "prepare")
        assert prepared.status == "prepare"
        # prepare is reachable only from ready
        with pytest.raises(Conflict):
            await coord.set_status(project.id, "prepare")
        back = await coord.set_status(project.id, "ready")
        assert back.status == "ready"

        await coord.delete_project(project.id)
        with pytest.raises(NotFound) as gone:
            await coord.get_project(project.id)
        assert "GET /api/projects/{id}/" in str(gone.value)


async def test_wait_for_status_gives_up_at_the_deadline_naming_project_and_status(site):
    email = await new_account(site.url)
    async with client(site, email, poll_policy=Backoff(0.05, 2, 0.2)) as c:
        await c.ensure_in_library(66)
        project = await c.create_project("waits")
        await c.set_workflow(project.id, [66])
        polls = []
        start = time.monotonic()
        with pytest.raises(WaitTimeout) as info:
            await c.wait_for_status(
                project.id, {"finished"}, deadline=0.6, on_poll=lambda p, t: polls.append(p.status)
            )
        took = time.monotonic() - start
    text = str(info.value)
    assert f"project {project.id}" in text and "'finished'" in text and "'ready'" in text
    assert " s" in text and email in text
    assert 0.6 <= took < 5.0
    assert set(polls) == {"ready"} and 2 <= len(polls) <= 12
    found = await _status_now(site, email, project.id)
    assert found == "ready"


async def _status_now(site, email, pid):
    async with client(site, email) as c:
        return (await c.get_project(pid)).status


async def test_429_burst_honours_retry_after_with_counted_calls(site):
    email = await new_account(site.url)
    async with client(site, email) as c:
        await c.ensure_login()
        await admin(site.url, "DELETE", "/_emulator/requests")
        await admin(site.url, "PUT", "/_emulator/faults", {"burst_429": 3, "retry_after": 0.4})
        start = time.monotonic()
        projects = await c.list_projects()
        took = time.monotonic() - start
    assert projects == []
    counts = await admin(site.url, "GET", "/_emulator/requests")
    assert counts["by_endpoint"]["GET /api/projects/"] == 4
    assert counts["by_status"]["429"] == 3
    assert took >= 3 * 0.4 - 0.05
    assert [r.status for r in c.stats.records][-4:] == [429, 429, 429, 200]


async def test_5xx_retries_idempotent_calls_and_never_repeats_a_post(site):
    email = await new_account(site.url)
    async with client(site, email, retry=FAST_RETRY) as c:
        await c.ensure_login()
        await admin(site.url, "DELETE", "/_emulator/requests")
        await admin(site.url, "PUT", "/_emulator/faults", {"error_rate": 1.0})
        with pytest.raises(TransportError) as get_err:
            await c.list_projects()
        with pytest.raises(TransportError):
            await c.create_project("never twice")
        await admin(site.url, "PUT", "/_emulator/faults", {"error_rate": 0.0})
        assert await c.list_projects() == []  # the POST was not done behind our back
    counts = await admin(site.url, "GET", "/_emulator/requests")
    assert counts["by_endpoint"]["GET /api/projects/"] == 3 + 1
    assert counts["by_endpoint"]["POST /api/projects/"] == 1
    assert "503" in str(get_err.value)


async def test_5xx_at_a_moderate_rate_is_absorbed(site):
    email = await new_account(site.url)
    async with client(
        site, email, retry=RetryPolicy(attempts=6, backoff=Backoff(0.01, 2, 0.05))
    ) as c:
        await c.ensure_login()
        await admin(site.url, "PUT", "/_emulator/faults", {"error_rate": 0.3, "seed": 4})
        for _ in range(6):
            await c.library()
        assert c.stats.by_status().get(503, 0) >= 1


async def test_short_token_lifetime_is_renewed_by_refresh_not_by_password(site):
    email = await new_account(site.url)
    await admin(site.url, "PUT", "/_emulator/faults", {"access_lifetime": 1.0})
    async with client(site, email) as c:
        await c.library()
        await asyncio.sleep(1.1)  # let the access token expire on the server's clock
        await c.library()
        assert c.logins == 1
    by = c.stats.by_endpoint()
    assert by["POST /api/auth/token/refresh/"] == 1
    assert by["POST /api/auth/login/"] == 1
    assert [r.status for r in c.stats.records if r.endpoint == "/api/apps/purchase/"] == [
        200,
        401,
        200,
    ]


async def test_politeness_twelve_requests_take_three_seconds_and_max_rate_holds(site):
    email = await new_account(site.url)
    stats = RequestStats()
    async with client(site, email, stats=stats, rate=3.0, burst=3) as c:
        await c.ensure_login()  # 1 request
        start = time.monotonic()
        await asyncio.gather(*(c.library() for _ in range(11)))  # 11 more: 12 in all
        took = time.monotonic() - start
    assert stats.total == 12
    assert took >= 3.0 - 0.05
    assert stats.max_rate(1.0)[email] <= 3 + 2
    assert stats.max_rate(3.0)[email] <= 3 + 2 / 3 + 1e-9


async def test_pool_logs_each_user_in_once_and_shares_stats(site):
    a, b = await new_account(site.url), await new_account(site.url)
    await admin(site.url, "DELETE", "/_emulator/requests")
    pool = WebsitePool(
        site.url, {a: SecretStr(PASSWORD), b: SecretStr(PASSWORD)}, rate=50, burst=10
    )
    async with pool:
        assert pool.client(a) is pool.client(a)
        await asyncio.gather(*(pool.client(u).library() for u in (a, b) for _ in range(5)))
        assert pool.client(a).logins == pool.client(b).logins == 1
        with pytest.raises(MissingCredentials):
            pool.client("nobody@example.org")
    counts = await admin(site.url, "GET", "/_emulator/requests")
    assert counts["by_endpoint"]["POST /api/auth/login/"] == 2
    assert pool.stats.by_user() == {a: 6, b: 6}
    assert pool.stats.total == counts["total"]


async def test_ensure_site_from_two_tasks_at_once_gives_one_site(site):
    email = new_email()
    await WebsiteClient.signup(site.url, email, SecretStr(PASSWORD))
    async with client(site, email) as c:
        first, second = await asyncio.gather(c.ensure_site("lab"), c.ensure_site("lab"))
    assert first.id == second.id
