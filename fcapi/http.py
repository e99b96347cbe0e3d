"""The one place that sends requests to the FeatureCloud website.

Everything the site may rely on about fedstack's behaviour is enforced here and nowhere else:
it names itself in `User-Agent`, stays inside a per-user token bucket, retries only what is
safe to retry (transport errors and 5xx on idempotent methods and on requests marked safe,
such as a login; a refused connection for any method, since nothing was sent), waits as long
as a 429's `Retry-After` asks, stops at the first 403, and renews an expired access token
once by refresh and once by a fresh login (`fcapi.auth`) before it gives up.
Every attempt is recorded in `RequestStats`.

The send path is a chain of short stages, outermost first, as httpx's own client is built:

    request        log in if needed, build the request once
    _send          retry: transport errors and 5xx of safe requests, with backoff (tenacity)
    _attempt       send until the site stops answering 429, then classify the answer
    _send_handling_auth   the auth flow: sign, and resend after renewing on a 401
    _send_single   the bucket, then one request on the wire, recorded

A logical request keeps one `_Call` through all of it: what it has spent (failures, 429s,
renewals) counts across every attempt, so its limits hold whatever the order of mishaps.

A caller with a deadline of its own (a run) sets it once with `deadline_scope`: every request
made inside, its retries, 429 pauses and renewals included, ends by then (`bounded`), so a
website that stops answering costs the caller what it has left and never four read timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import enum
import functools
import logging
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from fcapi import USER_AGENT
from fcapi.auth import BearerAuth, Session
from fcapi.backoff import Again, Backoff, retry
from fcapi.errors import (
    AuthError,
    FcError,
    ProtocolError,
    RateLimited,
    TransportError,
    WaitTimeout,
    detail_text,
    error_for_status,
    redact,
)
from fcapi.models import ErrorBody, Wire
from fcapi.ratelimit import TokenBucket
from fcapi.stats import RequestStats, endpoint_key

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

M = TypeVar("M")
W = TypeVar("W", bound=Wire)

#: one debug line per attempt: method, templated path, user, status; never headers or bodies
log = logging.getLogger(__name__)


class Closing(ABC):
    """`async with` for anything that holds connections and closes them in `aclose()`."""

    @abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


#: when every request of the current task must have ended (`time.monotonic()`), if ever
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


@contextlib.contextmanager
def deadline_scope(at: float | None) -> Iterator[None]:
    """Requests of fcapi's clients made inside (tasks started inside too) end by `at`.

    `at` is a `time.monotonic()` instant; None lifts the bound. A scope replaces the one
    around it, so the cleanup after a missed deadline can have a short bound of its own.
    """
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left() -> float | None:
    """Seconds left before the current deadline (negative once past), or None."""
    at = _DEADLINE.get()
    return None if at is None else at - time.monotonic()


class DeadlinePassed(WaitTimeout):
    """No answer came before the caller's deadline (`deadline_scope`): the other side is slow
    or gone, which says nothing of the state it was asked about."""


@contextlib.asynccontextmanager
async def bounded(who: str, endpoint: str, user: str | None = None) -> AsyncIterator[None]:
    """End the request inside by the current deadline, as a `DeadlinePassed` naming `who`
    (the server asked) and the endpoint."""
    left = time_left()
    if left is None:
        yield
        return
    try:
        async with asyncio.timeout(max(0.0, left)):
            yield
    except TimeoutError:
        raise DeadlinePassed(
            f"no answer from {who} before the deadline ({max(0.0, left):.1f} s were left)",
            endpoint=endpoint,
            user=user,
        ) from None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client of the process.

    Building one loads the CA bundle (about 25 ms of CPU); a runner with a client per user and
    per controller would otherwise spend seconds on it at a hundred sites.
    """
    return httpx.create_ssl_context()


#: retries of one website request: quick at first, then every second or two, so that the
#: retries cover a website's restart without a long silence after it is back
OUTAGE = Backoff(base=0.25, factor=2.0, cap=2.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one request tries before its error reaches the caller."""

    attempts: int = 8
    """tries in all for transport errors and 5xx (safe requests): with `OUTAGE` they span
    5 to 10 s, so a website restarting or a proxy's brief 502s cost a pause, not the run"""
    rate_limited_attempts: int = 5
    """tries in all while the site answers 429"""
    max_retry_after: float = 120.0
    """a 429 asking to wait longer than this is an error at once, not a silent stall"""
    backoff: Backoff = OUTAGE


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_detail(response: httpx.Response) -> str:
    """The server's `detail` (DRF style), else the start of its text body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict) and "detail" in body:
        return detail_text(ErrorBody.model_validate(body).detail)
    return detail_text(body)[:200]


def parse_body(
    response: httpx.Response, model: type[M] | TypeAdapter[M], *, endpoint: str, user: str | None
) -> M:
    """Validate a JSON answer; a shape we do not understand is a `ProtocolError`."""
    adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)
    try:
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise ProtocolError(
            f"unexpected answer (HTTP {response.status_code}): {problems}",
            endpoint=endpoint,
            user=user,
        ) from None


def describe_transport_error(exc: httpx.TransportError) -> str:
    kind = type(exc).__name__
    text = str(exc).strip()
    return f"{kind}: {text}" if text else kind


class Verdict(enum.Enum):
    """What an answer means for the request that got it."""

    DONE = "done"
    """below 400: the caller's answer"""
    SLOW_DOWN = "slow down"
    """429: hold every request of the user, then send again"""
    AGAIN = "again"
    """5xx on an idempotent method or a safe request: back off and send again"""
    FAILED = "failed"
    """anything else: a typed error, at once"""


def classify(method: str, status: int, *, safe: bool = False) -> Verdict:
    """The verdict on one answer (a 401 has been through the auth flow already).

    `safe` marks a request of another method that may be sent twice all the same (a login).
    """
    if status < 400:
        return Verdict.DONE
    if status == 429:
        return Verdict.SLOW_DOWN
    if status >= 500 and (safe or method in IDEMPOTENT):
        return Verdict.AGAIN
    return Verdict.FAILED


@dataclass(slots=True)
class _Call:
    """One logical request through all its attempts: what it is and what it has spent."""

    method: str
    path: str
    endpoint: str
    """the templated path, as errors and stats name it"""
    request: httpx.Request
    auth: httpx.Auth
    """`BearerAuth`, or the do-nothing `httpx.Auth()` for calls that need no account"""
    secrets: list[str] = field(default_factory=list)
    safe: bool = False
    """worth repeating after a 5xx or a lost answer: idempotent, or harmless when repeated"""
    failures: int = 0
    """transport errors and 5xx"""
    limited: int = 0
    """429s"""


class WebsiteHttp:
    """Authenticated, rate-limited, retrying requests as one user.

    `user` may be None for the calls that need no account (the app list, signup).
    """

    def __init__(
        self,
        base_url: str,
        user: str | None,
        password: SecretStr | None,
        *,
        limiter: TokenBucket,
        stats: RequestStats,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        self.limiter = limiter
        self.stats = stats
        self.retry = retry or RetryPolicy()
        self.session = Session(user, password, self._post)
        self._clock = clock
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            verify=tls_context(),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    @property
    def logged_in(self) -> bool:
        return self.session.logged_in

    @property
    def logins(self) -> int:
        return self.session.logins

    @property
    def refreshes(self) -> int:
        return self.session.refreshes

    async def aclose(self) -> None:
        await self._client.aclose()

    async def login(self) -> None:
        await self.session.login()

    async def refresh(self) -> None:
        await self.session.refresh()

    async def ensure_login(self) -> None:
        await self.session.ensure_login()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        auth: bool = True,
        secrets: Iterable[str] = (),
        safe: bool = False,
    ) -> httpx.Response:
        """Send one logical request; return its 2xx answer or raise a typed `FcError`.

        `secrets` are strings of this request (a project token) that must not leak into an
        error message even if the server echoes them. `safe` lets a POST be retried like a
        GET: only for requests whose repetition does no harm (a login, a library add).
        Inside a `deadline_scope` the request, all attempts included, ends by the deadline.
        """
        method = method.upper()
        async with bounded(self.base_url, endpoint_key(method, path), self.user):
            if auth:
                await self.ensure_login()
            return await self._send(self._call(method, path, json, params, auth, secrets, safe))

    def _call(
        self,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, str | int] | None,
        auth: bool,
        secrets: Iterable[str],
        safe: bool,
    ) -> _Call:
        return _Call(
            method,
            path,
            endpoint_key(method, path),
            self._client.build_request(
                method,
                path,
                json=json,
                params=params,
                headers=self.session.bearer() if auth else None,
            ),
            self.session.auth() if auth else httpx.Auth(),
            list(secrets),
            safe or method in IDEMPOTENT,
        )

    async def _post(self, path: str, body: Wire, answer: type[W]) -> W:
        """A POST needing no account (login, refresh), sent like every other request.

        Retried like a read: a second login or refresh only hands out one more token pair.
        """
        response = await self.request("POST", path, json=body.model_dump(), auth=False, safe=True)
        return parse_body(response, answer, endpoint=f"POST {path}", user=self.user)

    def parse(self, response: httpx.Response, model: type[M] | TypeAdapter[M]) -> M:
        endpoint = endpoint_key(response.request.method, response.request.url.path)
        return parse_body(response, model, endpoint=endpoint, user=self.user)

    # --- the send path, outermost stage first --------------------------------------------

    async def _send(self, call: _Call) -> httpx.Response:
        """Retry what is safe to retry, backing off between attempts; the last error stands."""
        return await retry(
            lambda: self._attempt(call),
            retry_on=lambda exc: isinstance(exc, Again),
            attempts=self.retry.attempts,
            policy=self.retry.backoff,
            sleep=self._sleep,
        )

    async def _attempt(self, call: _Call) -> httpx.Response:
        """Send until the site stops answering 429; then the answer, or why not."""
        while True:
            try:
                response = await self._send_handling_auth(call)
            except httpx.TransportError as exc:
                raise self._unanswered(call, exc) from None
            verdict = classify(call.method, response.status_code, safe=call.safe)
            if verdict is Verdict.DONE:
                return response
            if verdict is Verdict.SLOW_DOWN:
                self._slow_down(call, response)
                continue
            error = self._error(call, response)
            if verdict is Verdict.AGAIN:
                call.failures += 1
                raise Again(error, pause=self._asked_pause(response))
            raise error

    async def _send_handling_auth(self, call: _Call) -> httpx.Response:
        """Drive the auth flow: each request it yields goes out, its answer goes back in."""
        flow = call.auth.async_auth_flow(call.request)
        try:
            request = await flow.__anext__()
            while True:
                response = await self._send_single(call, request)
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
        finally:
            await flow.aclose()

    async def _send_single(self, call: _Call, request: httpx.Request) -> httpx.Response:
        """One request on the wire, inside the user's token bucket, recorded in the stats."""
        await self.limiter.acquire()
        sent_at = self._clock()
        try:
            response = await self._client.send(request)
        except httpx.TransportError as exc:
            self.stats.record(self.user, call.method, call.path, 0, sent_at)
            log.debug("%s as %s -> %s", call.endpoint, self.user, type(exc).__name__)
            raise
        self.stats.record(self.user, call.method, call.path, response.status_code, sent_at)
        log.debug("%s as %s -> %d", call.endpoint, self.user, response.status_code)
        return response

    # --- what an attempt's outcome turns into --------------------------------------------

    def _slow_down(self, call: _Call, response: httpx.Response) -> None:
        """A 429: hold every request of this user, not only this one, as long as asked."""
        call.limited += 1
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is None:
            wait = self.retry.backoff.delay(call.limited - 1)
        if call.limited < self.retry.rate_limited_attempts and wait <= self.retry.max_retry_after:
            self.limiter.pause_until(self._clock() + wait)
            return
        raise RateLimited(
            f"the site kept answering 429 (too many requests) after {call.limited} "
            f"attempt{'s' if call.limited > 1 else ''}; slow down and try later",
            endpoint=call.endpoint,
            user=self.user,
            retry_after=wait,
        )

    def _asked_pause(self, response: httpx.Response) -> float:
        """The least wait a 5xx asks for by its `Retry-After`, within reason."""
        asked = parse_retry_after(response.headers.get("Retry-After"))
        return 0.0 if asked is None else min(asked, self.retry.max_retry_after)

    def _unanswered(self, call: _Call, exc: httpx.TransportError) -> FcError | Again:
        """No answer: worth another attempt when nothing can have been done twice."""
        call.failures += 1
        error = TransportError(
            f"no answer from {self.base_url} after {call.failures} "
            f"attempt{'s' if call.failures > 1 else ''}: "
            f"{redact(describe_transport_error(exc), self._secrets(call))}",
            endpoint=call.endpoint,
            user=self.user,
        )
        again = call.safe or isinstance(exc, httpx.ConnectError)
        return Again(error) if again else error

    def _error(self, call: _Call, response: httpx.Response) -> FcError:
        """The typed error for an answer that is not a success."""
        if response.status_code == 401 and isinstance(call.auth, BearerAuth):
            return AuthError(
                f"the site keeps answering 401 for {self.user} after a token refresh and a "
                "fresh login; check the account",
                endpoint=call.endpoint,
                user=self.user,
            )
        detail = redact(error_detail(response), self._secrets(call))
        return error_for_status(
            response.status_code, detail, endpoint=call.endpoint, user=self.user
        )

    def _secrets(self, call: _Call) -> list[str | None]:
        return [*self.session.secrets(), *call.secrets]


def model_dump(model: BaseModel) -> dict[str, Any]:
    """A request body as the site expects it: field names as declared, None kept."""
    return model.model_dump(by_alias=True)
