"""The one place that sends requests to the FeatureCloud website.

Everything the site may rely on about fedstack's behaviour is enforced here and nowhere else:
it names itself in `User-Agent`, stays inside a per-user token bucket, retries only what is
safe to retry (transport errors and 5xx on idempotent methods; a refused connection for any
method, since nothing was sent), waits as long as a 429's `Retry-After` asks, stops at the
first 403, and renews an expired access token once by refresh and once by a fresh login
before it gives up. Every attempt is recorded in `RequestStats`.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from fcapi import USER_AGENT
from fcapi.backoff import RETRY, Backoff
from fcapi.errors import (
    AuthError,
    Conflict,
    FcError,
    ProtocolError,
    RateLimited,
    TransportError,
    detail_text,
    error_for_status,
    redact,
)
from fcapi.models import AccessToken, ErrorBody, LoginRequest, RefreshRequest, TokenPair
from fcapi.ratelimit import TokenBucket
from fcapi.stats import RequestStats, endpoint_key

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
LOGIN_PATH = "/api/auth/login/"
REFRESH_PATH = "/api/auth/token/refresh/"

M = TypeVar("M")

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


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client of the process.

    Building one loads the CA bundle (about 25 ms of CPU); a runner with a client per user and
    per controller would otherwise spend seconds on it at a hundred sites.
    """
    return httpx.create_ssl_context()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one request tries before its error reaches the caller."""

    attempts: int = 4
    """tries in all for transport errors and 5xx (idempotent methods)"""
    rate_limited_attempts: int = 5
    """tries in all while the site answers 429"""
    max_retry_after: float = 120.0
    """a 429 asking to wait longer than this is an error at once, not a silent stall"""
    backoff: Backoff = RETRY


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
        self._password = password
        self.limiter = limiter
        self.stats = stats
        self.retry = retry or RetryPolicy()
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
        self._access: str | None = None
        self._refresh: str | None = None
        self._generation = 0  # bumped whenever the access token changes
        self._auth_lock = asyncio.Lock()
        self.logins = 0
        self.refreshes = 0

    @property
    def logged_in(self) -> bool:
        return self._access is not None

    def _secrets(self, extra: Iterable[str]) -> list[str | None]:
        password = self._password.get_secret_value() if self._password is not None else None
        return [password, self._access, self._refresh, *extra]

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- authentication -------------------------------------------------------------

    async def login(self) -> None:
        """Log in with the password; every later request carries the new access token."""
        if self.user is None or self._password is None:
            raise AuthError("no account to log in with", endpoint=f"POST {LOGIN_PATH}")
        body = LoginRequest(username=self.user, password=self._password.get_secret_value())
        try:
            response = await self._send("POST", LOGIN_PATH, json=body.model_dump(), auth=False)
        except (AuthError, Conflict) as exc:
            raise AuthError(
                "login refused: wrong e-mail or password, or the account is not active "
                f"({exc.message})",
                endpoint=exc.endpoint,
                user=self.user,
            ) from None
        pair = parse_body(response, TokenPair, endpoint=f"POST {LOGIN_PATH}", user=self.user)
        self._access, self._refresh = pair.access, pair.refresh
        self._generation += 1
        self.logins += 1

    async def refresh(self) -> None:
        """Trade the refresh token for a new access token (one request, no password sent)."""
        if self._refresh is None:
            await self.login()
            return
        body = RefreshRequest(refresh=self._refresh)
        try:
            response = await self._send("POST", REFRESH_PATH, json=body.model_dump(), auth=False)
        except (AuthError, Conflict) as exc:
            raise AuthError(
                f"token refresh refused ({exc.message})", endpoint=exc.endpoint, user=self.user
            ) from None
        token = parse_body(response, AccessToken, endpoint=f"POST {REFRESH_PATH}", user=self.user)
        self._access = token.access
        refresh = getattr(token, "refresh", None)  # a rotating refresh token, if the site sends one
        if isinstance(refresh, str) and refresh:
            self._refresh = refresh
        self._generation += 1
        self.refreshes += 1

    async def ensure_login(self) -> None:
        if self._access is not None:
            return
        async with self._auth_lock:
            if self._access is None:
                await self.login()

    async def _renew(self, seen_generation: int, *, by_login: bool) -> None:
        """Renew the access token unless another request already did since `seen_generation`.

        Many requests of one user may hit 401 together; only the first renews.
        """
        async with self._auth_lock:
            if self._generation != seen_generation:
                return
            if by_login:
                await self.login()
                return
            try:
                await self.refresh()
            except AuthError:
                await self.login()

    # --- requests ----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        auth: bool = True,
        secrets: Iterable[str] = (),
    ) -> httpx.Response:
        """Send one logical request; return its 2xx answer or raise a typed `FcError`.

        `secrets` are strings of this request (a project token) that must not leak into an
        error message even if the server echoes them.
        """
        if auth:
            await self.ensure_login()
        return await self._send(method, path, json=json, params=params, auth=auth, secrets=secrets)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        auth: bool,
        secrets: Iterable[str] = (),
    ) -> httpx.Response:
        method = method.upper()
        endpoint = endpoint_key(method, path)
        extra_secrets = list(secrets)
        failures = 0  # transport errors and 5xx
        limited = 0  # 429s
        renewals = 0  # 401s answered by renewing the token
        while True:
            headers: dict[str, str] = {}
            generation = self._generation
            if auth and self._access is not None:
                headers["Authorization"] = f"Bearer {self._access}"
            await self.limiter.acquire()
            sent_at = self._clock()
            try:
                response = await self._client.request(
                    method, path, json=json, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                self.stats.record(self.user, method, path, 0, sent_at)
                log.debug("%s as %s -> %s", endpoint, self.user, type(exc).__name__)
                failures += 1
                safe = method in IDEMPOTENT or isinstance(exc, httpx.ConnectError)
                if safe and failures < self.retry.attempts:
                    await self._sleep(self.retry.backoff.delay(failures - 1))
                    continue
                raise TransportError(
                    f"no answer from {self.base_url} after {failures} "
                    f"attempt{'s' if failures > 1 else ''}: "
                    f"{redact(describe_transport_error(exc), self._secrets(extra_secrets))}",
                    endpoint=endpoint,
                    user=self.user,
                ) from None
            self.stats.record(self.user, method, path, response.status_code, sent_at)
            status = response.status_code
            log.debug("%s as %s -> %d", endpoint, self.user, status)
            if status < 400:
                return response

            if status == 401 and auth:
                renewals += 1
                if renewals <= 2:
                    await self._renew(generation, by_login=renewals == 2)
                    continue
                raise AuthError(
                    f"the site keeps answering 401 for {self.user} after a token refresh and a "
                    "fresh login; check the account",
                    endpoint=endpoint,
                    user=self.user,
                )

            if status == 429:
                limited += 1
                wait = parse_retry_after(response.headers.get("Retry-After"))
                if wait is None:
                    wait = self.retry.backoff.delay(limited - 1)
                if (
                    limited < self.retry.rate_limited_attempts
                    and wait <= self.retry.max_retry_after
                ):
                    # hold every request of this user, not only this one
                    self.limiter.pause_until(self._clock() + wait)
                    continue
                raise RateLimited(
                    f"the site kept answering 429 (too many requests) after {limited} "
                    f"attempt{'s' if limited > 1 else ''}; slow down and try later",
                    endpoint=endpoint,
                    user=self.user,
                    retry_after=wait,
                )

            if status >= 500 and method in IDEMPOTENT:
                failures += 1
                if failures < self.retry.attempts:
                    wait = self.retry.backoff.delay(failures - 1)
                    asked = parse_retry_after(response.headers.get("Retry-After"))
                    if asked is not None:
                        wait = max(wait, min(asked, self.retry.max_retry_after))
                    await self._sleep(wait)
                    continue

            detail = redact(error_detail(response), self._secrets(extra_secrets))
            error: FcError = error_for_status(status, detail, endpoint=endpoint, user=self.user)
            raise error

    def parse(self, response: httpx.Response, model: type[M] | TypeAdapter[M]) -> M:
        endpoint = endpoint_key(response.request.method, response.request.url.path)
        return parse_body(response, model, endpoint=endpoint, user=self.user)


def model_dump(model: BaseModel) -> dict[str, Any]:
    """A request body as the site expects it: field names as declared, None kept."""
    return model.model_dump(by_alias=True)
