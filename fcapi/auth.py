"""Login, token refresh and re-login for one FeatureCloud user, as an `httpx.Auth` flow.

The website hands out a short-lived access token with a refresh token (simplejwt). A user
logs in once per process, lazily; an access token the site no longer takes (a 401) is
renewed once by refresh, which sends no password, and once by a fresh login, before the
401 is let through to the caller. Many requests of one user may hit the 401 together: only
the first renews, the others wait for it and carry the new token.

`Session` holds one user's tokens and renews them; `BearerAuth` is the flow of one request.
How the login and refresh requests travel (rate limit, retries, stats) is the sender's
business: `Session` gets a `Post` that sends them the way every other request goes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator
from typing import Protocol, TypeVar

import httpx
from pydantic import SecretStr

from fcapi.errors import AuthError, Conflict
from fcapi.models import AccessToken, LoginRequest, RefreshRequest, TokenPair, Wire

LOGIN_PATH = "/api/auth/login/"
REFRESH_PATH = "/api/auth/token/refresh/"

W = TypeVar("W", bound=Wire)


class Post(Protocol):
    """Send `body` to `path` without a token and validate the answer as `answer`."""

    async def __call__(self, path: str, body: Wire, answer: type[W]) -> W: ...


class Session:
    """One user's access and refresh token, renewed on demand.

    `user` may be None for a client that only makes calls needing no account.
    """

    def __init__(self, user: str | None, password: SecretStr | None, post: Post) -> None:
        self.user = user
        self._password = password
        self._post = post
        self._access: str | None = None
        self._refresh: str | None = None
        self._generation = 0  # bumped whenever the access token changes
        self._lock = asyncio.Lock()
        self.logins = 0
        self.refreshes = 0

    @property
    def logged_in(self) -> bool:
        return self._access is not None

    def secrets(self) -> list[str | None]:
        """What must never show in an error message, even echoed by the server."""
        password = self._password.get_secret_value() if self._password is not None else None
        return [password, self._access, self._refresh]

    def auth(self) -> BearerAuth:
        """The flow of one logical request (its renewals count across all its attempts)."""
        return BearerAuth(self)

    def bearer(self) -> dict[str, str]:
        """The header carrying the access token (none before the first login).

        A request built with it has `Authorization` where fcapi has always sent it, among
        the client's headers and before the body's; `sign` then swaps the token in place.
        """
        return {} if self._access is None else {"Authorization": f"Bearer {self._access}"}

    def sign(self, request: httpx.Request) -> int:
        """Put the current access token on `request`; return the token's generation."""
        for name, value in self.bearer().items():
            request.headers[name] = value  # in place: `update` would move it to the end
        return self._generation

    async def login(self) -> None:
        """Log in with the password; every later request carries the new access token."""
        if self.user is None or self._password is None:
            raise AuthError("no account to log in with", endpoint=f"POST {LOGIN_PATH}")
        body = LoginRequest(username=self.user, password=self._password.get_secret_value())
        try:
            pair = await self._post(LOGIN_PATH, body, TokenPair)
        except (AuthError, Conflict) as exc:
            raise AuthError(
                "login refused: wrong e-mail or password, or the account is not active "
                f"({exc.message})",
                endpoint=exc.endpoint,
                user=self.user,
            ) from None
        self._access, self._refresh = pair.access, pair.refresh
        self._generation += 1
        self.logins += 1

    async def refresh(self) -> None:
        """Trade the refresh token for a new access token (one request, no password sent)."""
        if self._refresh is None:
            await self.login()
            return
        try:
            token = await self._post(
                REFRESH_PATH, RefreshRequest(refresh=self._refresh), AccessToken
            )
        except (AuthError, Conflict) as exc:
            raise AuthError(
                f"token refresh refused ({exc.message})", endpoint=exc.endpoint, user=self.user
            ) from None
        self._access = token.access
        refresh = getattr(token, "refresh", None)  # a rotating refresh token, if the site sends one
        if isinstance(refresh, str) and refresh:
            self._refresh = refresh
        self._generation += 1
        self.refreshes += 1

    async def ensure_login(self) -> None:
        if self._access is not None:
            return
        async with self._lock:
            if self._access is None:
                await self.login()

    async def renew(self, seen_generation: int, *, by_login: bool) -> None:
        """Renew the access token unless another request already did since `seen_generation`."""
        async with self._lock:
            if self._generation != seen_generation:
                return
            if by_login:
                await self.login()
                return
            try:
                await self.refresh()
            except AuthError:
                await self.login()


class BearerAuth(httpx.Auth):
    """Sign one request; answer a 401 by renewing the token and sending the request again.

    The first 401 is renewed by refresh (falling back to a login if the refresh is refused),
    the second by a fresh login; a third 401 goes back to the caller, who names it. The
    flow does I/O (the renewal), so it is async only; it reads nothing but the status, so
    it needs no response body (`requires_response_body` stays False).
    """

    renewals_allowed = 2

    def __init__(self, session: Session) -> None:
        self.session = session
        self.renewals = 0

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("BearerAuth renews tokens asynchronously: use an httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        while True:
            seen = self.session.sign(request)
            response = yield request
            if response.status_code != 401 or self.renewals >= self.renewals_allowed:
                return
            self.renewals += 1
            await self.session.renew(seen, by_login=self.renewals == self.renewals_allowed)
