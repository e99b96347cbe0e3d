"""Protocol edge cases of fcapi.http against a scripted fake server (httpx.MockTransport).

The fake plays the website's side of the wire (login, refresh, scripted failures); the code
under test is the real client. A fake clock stands in for time, so Retry-After and backoff
waits are asserted exactly and cost no wall time. The same behaviours are checked against
the emulator's fault knobs in test_client_website.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from fcapi import USER_AGENT
from fcapi.backoff import Backoff
from fcapi.errors import (
    AuthError,
    Conflict,
    ExitCode,
    FcError,
    MissingCredentials,
    NotFound,
    PermissionDenied,
    ProjectFailed,
    ProtocolError,
    RateLimited,
    TransportError,
    WaitTimeout,
)
from fcapi.http import RetryPolicy, WebsiteHttp, parse_retry_after
from fcapi.ratelimit import TokenBucket
from fcapi.stats import RequestStats, template_path
from fcapi.website import WebsiteClient

USER = "alice@example.org"
PASSWORD = "hunter2-very-secret"
PROJECT_TOKEN = "5f0c1d9e-7a51-4a2e-9a0b-3c4d5e6f7a8b"

Script = Callable[[httpx.Request], httpx.Response | None]


class FakeSite:
    """Logs in with (USER, PASSWORD), refreshes, and lets a test script other answers."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.generation = 0
        self.valid_access: set[str] = set()
        self.refresh_ok = True
        self.script: Script | None = None

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == path)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script is not None:
            scripted = self.script(request)
            if scripted is not None:
                return scripted
        path = request.url.path
        if path == "/api/auth/login/":
            body = json.loads(request.content)
            if body != {"username": USER, "password": PASSWORD}:
                return httpx.Response(401, json={"detail": "No active account found"})
            return httpx.Response(
                200, json={"access": self._new_access(), "refresh": "refresh-tok-1"}
            )
        if path == "/api/auth/token/refresh/":
            if not self.refresh_ok or json.loads(request.content) != {"refresh": "refresh-tok-1"}:
                return httpx.Response(401, json={"detail": "Token is invalid or expired"})
            return httpx.Response(200, json={"access": self._new_access()})
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid_access:
            return httpx.Response(401, json={"detail": "not authenticated"})
        if path == "/api/projects/7/":
            return httpx.Response(200, json={"id": 7, "name": "p", "status": "ready"})
        return httpx.Response(404, json={"detail": "Not found."})

    def _new_access(self) -> str:
        self.generation += 1
        token = f"access-tok-{self.generation}"
        self.valid_access.add(token)
        return token

    def expire_all(self) -> None:
        self.valid_access.clear()


@pytest.fixture
def fake() -> FakeSite:
    return FakeSite()


@pytest.fixture
def http(fake, clock):
    h = WebsiteHttp(
        "http://site.test",
        USER,
        SecretStr(PASSWORD),
        limiter=TokenBucket(3.0, 3, clock=clock, sleep=clock.sleep),
        stats=RequestStats(),
        transport=httpx.MockTransport(fake.handler),
        retry=RetryPolicy(attempts=3, rate_limited_attempts=3, backoff=Backoff(0.5, 2, 4)),
        clock=clock,
        sleep=clock.sleep,
    )
    yield h


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    for text in (str(exc), repr(exc), repr(exc.args)):
        for secret in (PASSWORD, *secrets):
            assert secret not in text, f"{secret!r} leaked into {text!r}"


async def test_headers_name_fedstack_and_carry_the_bearer_token(http, fake):
    await http.request("GET", "/api/projects/7/")
    login, get = fake.requests
    assert login.headers["User-Agent"] == USER_AGENT
    assert "fedstack" in USER_AGENT and "http" in USER_AGENT
    assert "Authorization" not in login.headers
    assert get.headers["Authorization"] == "Bearer access-tok-1"


async def test_one_login_serves_many_requests(http, fake):
    await asyncio.gather(*(http.request("GET", "/api/projects/7/") for _ in range(5)))
    assert fake.count("POST", "/api/auth/login/") == 1
    assert http.logins == 1


async def test_expired_access_token_is_refreshed_once_and_the_request_repeated(http, fake):
    await http.request("GET", "/api/projects/7/")
    fake.expire_all()
    # several requests hit the 401 together: one refresh serves them all
    await asyncio.gather(*(http.request("GET", "/api/projects/7/") for _ in range(4)))
    assert fake.count("POST", "/api/auth/token/refresh/") == 1
    assert fake.count("POST", "/api/auth/login/") == 1
    assert fake.requests[-1].headers["Authorization"] == "Bearer access-tok-2"


async def test_refused_refresh_falls_back_to_a_fresh_login(http, fake):
    await http.request("GET", "/api/projects/7/")
    fake.expire_all()
    fake.refresh_ok = False
    await http.request("GET", "/api/projects/7/")
    assert fake.count("POST", "/api/auth/token/refresh/") == 1
    assert fake.count("POST", "/api/auth/login/") == 2


async def test_a_401_that_survives_refresh_and_login_is_an_error_naming_the_user(http, fake):
    fake.script = lambda r: (
        httpx.Response(401, json={"detail": "nope"}) if r.url.path == "/api/projects/7/" else None
    )
    with pytest.raises(AuthError) as info:
        await http.request("GET", "/api/projects/7/")
    assert USER in str(info.value)
    assert "GET /api/projects/{id}/" in str(info.value)
    assert fake.count("GET", "/api/projects/7/") == 3
    assert fake.count("POST", "/api/auth/token/refresh/") == 1
    assert fake.count("POST", "/api/auth/login/") == 2
    assert_no_secret(info.value, "access-tok-1", "access-tok-2", "refresh-tok-1")
    assert info.value.exit_code == ExitCode.AUTH


async def test_wrong_password_is_an_auth_error_without_the_password(fake, clock):
    http = WebsiteHttp(
        "http://site.test",
        USER,
        SecretStr("wrong-password-123"),
        limiter=TokenBucket(clock=clock, sleep=clock.sleep),
        stats=RequestStats(),
        transport=httpx.MockTransport(fake.handler),
    )
    with pytest.raises(AuthError) as info:
        await http.request("GET", "/api/projects/7/")
    assert "login refused" in str(info.value) and USER in str(info.value)
    assert_no_secret(info.value, "wrong-password-123")
    assert fake.count("POST", "/api/auth/login/") == 1


async def test_429_waits_as_long_as_retry_after_says_for_any_method(http, fake, clock):
    await http.ensure_login()
    answers = iter([429, 429, 201])

    def script(r):
        if r.url.path == "/api/projects/":
            code = next(answers)
            return httpx.Response(code, headers={"Retry-After": "7"}, json={"id": 9})
        return None

    fake.script = script
    start = clock()
    await http.request("POST", "/api/projects/", json={"name": "x"})
    assert fake.count("POST", "/api/projects/") == 3
    assert clock() - start == pytest.approx(14.0, abs=0.01)
    statuses = [r.status for r in http.stats.records if r.endpoint == "/api/projects/"]
    assert statuses == [429, 429, 201]


async def test_retry_after_holds_the_users_other_requests_too(http, fake, clock):
    await http.ensure_login()
    limited = {"n": 0}

    def script(r):
        if r.url.path == "/api/projects/7/" and limited["n"] == 0:
            limited["n"] += 1
            return httpx.Response(429, headers={"Retry-After": "5"})
        return None

    fake.script = script
    start = clock()
    await http.request("GET", "/api/projects/7/")
    assert clock() - start == pytest.approx(5.0, abs=0.01)
    with pytest.raises(NotFound):
        await http.request("GET", "/api/site/")
    # after the pause the bucket restarts without a burst
    assert clock() - start == pytest.approx(5 + 1 / 3, abs=0.01)


async def test_persistent_429_is_rate_limited_and_a_huge_retry_after_is_not_waited(http, fake):
    await http.ensure_login()
    fake.script = lambda r: (
        httpx.Response(429, headers={"Retry-After": "2"})
        if r.url.path == "/api/projects/7/"
        else None
    )
    with pytest.raises(RateLimited) as info:
        await http.request("GET", "/api/projects/7/")
    assert fake.count("GET", "/api/projects/7/") == 3
    assert info.value.exit_code == ExitCode.RATE_LIMITED
    fake.requests.clear()
    fake.script = lambda r: (
        httpx.Response(429, headers={"Retry-After": "86400"})
        if r.url.path == "/api/projects/7/"
        else None
    )
    with pytest.raises(RateLimited):
        await http.request("GET", "/api/projects/7/")
    assert fake.count("GET", "/api/projects/7/") == 1


async def test_5xx_is_retried_with_backoff_on_idempotent_methods_only(http, fake, clock):
    await http.ensure_login()
    answers = iter([503, 502, 200])
    fake.script = lambda r: (
        httpx.Response(next(answers), json={"id": 7, "status": "ready"})
        if r.url.path == "/api/projects/7/"
        else None
    )
    await http.request("PUT", "/api/projects/7/", json={"status": "ready"})
    assert fake.count("PUT", "/api/projects/7/") == 3
    assert 0.25 <= clock.sleeps[0] <= 0.5 and 0.5 <= clock.sleeps[1] <= 1.0

    fake.script = lambda r: (
        httpx.Response(500, json={"detail": "boom"}) if r.url.path == "/api/projects/" else None
    )
    with pytest.raises(TransportError) as info:
        await http.request("POST", "/api/projects/", json={"name": "x"})
    assert fake.count("POST", "/api/projects/") == 1  # a POST may have been done: never repeated
    assert "boom" in str(info.value) and "POST /api/projects/" in str(info.value)


async def test_5xx_gives_up_after_the_attempts(http, fake):
    await http.ensure_login()
    fake.script = lambda r: httpx.Response(503) if r.url.path == "/api/projects/7/" else None
    with pytest.raises(TransportError) as info:
        await http.request("GET", "/api/projects/7/")
    assert fake.count("GET", "/api/projects/7/") == 3
    assert info.value.exit_code == ExitCode.TRANSPORT


async def test_transport_errors_retry_reads_and_refused_connections_only(http, fake):
    await http.ensure_login()
    fails = {"n": 0}

    def read_timeout(r):
        if r.url.path == "/api/projects/7/" and fails["n"] < 2:
            fails["n"] += 1
            raise httpx.ReadTimeout("timed out", request=r)
        return None

    fake.script = read_timeout
    await http.request("GET", "/api/projects/7/")
    assert fake.count("GET", "/api/projects/7/") == 3

    def post_timeout(r):
        if r.url.path == "/api/projects/":
            raise httpx.ReadTimeout("timed out", request=r)
        return None

    fake.script = post_timeout
    with pytest.raises(TransportError) as info:
        await http.request("POST", "/api/projects/", json={})
    assert fake.count("POST", "/api/projects/") == 1
    assert "ReadTimeout" in str(info.value)

    refused = {"n": 0}

    def connect_refused(r):
        if r.url.path == "/api/site/" and refused["n"] < 1:
            refused["n"] += 1
            raise httpx.ConnectError("connection refused", request=r)
        return httpx.Response(201, json={}) if r.url.path == "/api/site/" else None

    fake.script = connect_refused
    await http.request("POST", "/api/site/", json={})
    assert fake.count("POST", "/api/site/") == 2  # nothing was sent the first time


async def test_403_stops_at_once_and_says_what_to_do(http, fake):
    await http.ensure_login()
    fake.script = lambda r: (
        httpx.Response(403, json={"detail": "You do not have permission."})
        if r.url.path == "/api/projects/7/"
        else None
    )
    with pytest.raises(PermissionDenied) as info:
        await http.request("PUT", "/api/projects/7/", json={"status": "prepare"})
    text = str(info.value)
    assert fake.count("PUT", "/api/projects/7/") == 1
    assert "refused" in text and "do not retry" in text and "You do not have permission." in text
    assert USER in text and "PUT /api/projects/{id}/" in text
    assert info.value.exit_code == ExitCode.PERMISSION


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (404, NotFound, ExitCode.NOT_FOUND),
        (409, Conflict, ExitCode.CONFLICT),
        (400, Conflict, ExitCode.CONFLICT),
    ],
)
async def test_client_errors_map_to_types_with_the_servers_detail(http, fake, status, kind, code):
    await http.ensure_login()
    fake.script = lambda r: (
        httpx.Response(status, json={"detail": "prepare is reachable only from ready"})
        if r.url.path == "/api/projects/7/"
        else None
    )
    with pytest.raises(kind) as info:
        await http.request("PUT", "/api/projects/7/", json={"status": "prepare"})
    assert "prepare is reachable only from ready" in str(info.value)
    assert info.value.exit_code == code
    assert fake.count("PUT", "/api/projects/7/") == 1


async def test_a_server_echoing_a_secret_does_not_leak_it(http, fake):
    await http.ensure_login()
    fake.script = lambda r: (
        httpx.Response(
            400, json={"detail": f"token {PROJECT_TOKEN} already used; you sent {PASSWORD}"}
        )
        if r.url.path == "/api/project-tokens/"
        else None
    )
    with pytest.raises(Conflict) as info:
        await http.request(
            "POST", "/api/project-tokens/", json={"token": PROJECT_TOKEN}, secrets=[PROJECT_TOKEN]
        )
    assert "already used" in str(info.value)
    assert_no_secret(info.value, PROJECT_TOKEN, "access-tok-1", "refresh-tok-1")


def test_no_error_kind_shows_a_password_or_token():
    kinds = [
        AuthError,
        PermissionDenied,
        RateLimited,
        NotFound,
        Conflict,
        ProtocolError,
        WaitTimeout,
        TransportError,
        ProjectFailed,
        FcError,
    ]
    for kind in kinds:
        exc = kind("something went wrong", endpoint="POST /api/auth/login/", user=USER)
        assert_no_secret(exc, "access-tok-1")
        assert USER in str(exc) and "POST /api/auth/login/" in str(exc)
        assert kind.__name__ in repr(exc)
    missing = MissingCredentials(USER, ["the environment", ".env"])
    assert_no_secret(missing)
    codes = {k.exit_code for k in kinds if k not in (ProtocolError, FcError)}
    assert len(codes) == 8  # each kind its own exit code


async def test_answers_the_client_cannot_parse_are_protocol_errors(fake, clock):
    fake.script = lambda r: (
        httpx.Response(200, json={"unexpected": True}) if r.url.path == "/api/projects/7/" else None
    )
    async with WebsiteClient(
        "http://site.test", USER, SecretStr(PASSWORD), transport=httpx.MockTransport(fake.handler)
    ) as client:
        with pytest.raises(ProtocolError) as info:
            await client.get_project(7)
    assert "GET /api/projects/{id}/" in str(info.value)


async def test_stats_record_every_attempt_under_its_templated_endpoint(http, fake):
    await http.request("GET", "/api/projects/7/")
    with pytest.raises(NotFound):
        await http.request("GET", "/api/projects/12345/")
    fake.expire_all()
    await http.request("GET", "/api/projects/7/")
    assert http.stats.by_endpoint() == {
        "POST /api/auth/login/": 1,
        "GET /api/projects/{id}/": 4,
        "POST /api/auth/token/refresh/": 1,
    }
    assert http.stats.total == 6
    assert http.stats.by_user() == {USER: 6}
    assert [r.status for r in http.stats.records] == [200, 200, 404, 401, 200, 200]


def test_templates_and_retry_after_parsing():
    assert template_path("/api/projects/17/") == "/api/projects/{id}/"
    assert template_path("/api/apps/66/purchase/") == "/api/apps/{id}/purchase/"
    assert template_path("/api/project-tokens/token/3/") == "/api/project-tokens/token/{id}/"
    assert template_path("/file-upload/?projectId=3") == "/file-upload/"
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10)


async def test_renewals_count_across_all_attempts_of_one_request(http, fake):
    """401, 503, 401: the second 401 is answered by a fresh login, not a second refresh."""
    await http.request("GET", "/api/projects/7/")
    answers = iter([401, 503, 401])

    def script(r):
        if r.url.path == "/api/projects/7/":
            code = next(answers, None)
            return None if code is None else httpx.Response(code, json={"detail": "x"})
        return None

    fake.script = script
    await http.request("GET", "/api/projects/7/")
    assert fake.count("GET", "/api/projects/7/") == 5
    assert fake.count("POST", "/api/auth/token/refresh/") == 1
    assert fake.count("POST", "/api/auth/login/") == 2
