"""fcapi.auth on its own: a real `httpx.Auth` flow, usable by any httpx async client."""

from __future__ import annotations

from typing import TypeVar

import httpx
import pytest
from pydantic import SecretStr

from fcapi.auth import LOGIN_PATH, REFRESH_PATH, Session
from fcapi.errors import AuthError
from fcapi.models import Wire

W = TypeVar("W", bound=Wire)


class Tokens:
    """The login and refresh endpoints as a `Post`; counts what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, path: str, body: Wire, answer: type[W]) -> W:
        self.asked.append(path)
        n = len(self.asked)
        if path == LOGIN_PATH:
            return answer.model_validate({"access": f"a{n}", "refresh": "r"})
        return answer.model_validate({"access": f"a{n}"})


async def test_the_flow_signs_and_renews_by_refresh_then_login_inside_a_plain_client():
    tokens = Tokens()
    session = Session("u@x.org", SecretStr("pw-123456"), tokens)
    accepted = {"a3"}  # only the token of the second renewal is good
    sent: list[str] = []

    def site(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("Authorization", ""))
        ok = request.headers.get("Authorization", "").removeprefix("Bearer ") in accepted
        return httpx.Response(200 if ok else 401)

    await session.ensure_login()
    async with httpx.AsyncClient(transport=httpx.MockTransport(site)) as client:
        response = await client.get("http://site.test/api/x/", auth=session.auth())
    assert response.status_code == 200
    assert tokens.asked == [LOGIN_PATH, REFRESH_PATH, LOGIN_PATH]
    assert sent == ["Bearer a1", "Bearer a2", "Bearer a3"]
    assert (session.logins, session.refreshes) == (2, 1)


async def test_a_third_401_goes_back_to_the_caller_and_sync_clients_are_refused():
    session = Session("u@x.org", SecretStr("pw-123456"), Tokens())
    await session.ensure_login()
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(401))) as c:
        assert (await c.get("http://site.test/", auth=session.auth())).status_code == 401
    sync = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with sync, pytest.raises(RuntimeError, match="AsyncClient"):
        sync.get("http://site.test/", auth=session.auth())


async def test_no_account_is_an_auth_error_before_any_request():
    tokens = Tokens()
    with pytest.raises(AuthError, match="no account"):
        await Session(None, None, tokens).login()
    assert tokens.asked == []
