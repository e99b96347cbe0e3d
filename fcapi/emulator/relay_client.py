"""The controller's side of the relay: httpx calls to the website's internal endpoints.

The site token comes from site_info.json at every call, so a controller started before a
client wrote that file works once it exists.

A website that restarts or hiccups must not cost a run: a call that got no answer, or a 502,
503 or 504 (the website, or a proxy in front of it, not taking requests just now), is sent
again with backoff (`fcapi.backoff.retry`) for up to `OUTAGE` seconds. Finalize, state
reports and reads are idempotent on the website, so any of them is sent again; an app's
message only when it cannot have arrived (no connection, or refused unread), since a message
whose answer was lost may have been delivered and must not arrive twice.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx

from fcapi.backoff import Again, Backoff, retry
from fcapi.emulator.httputil import HTTPError

PREFIX = "/api/_emulator/relay"
#: how long a website may be away before a relay call fails (a restart takes a few seconds)
OUTAGE = 30.0
#: quick at first (a blip), at most every 2 s while the website restarts
OUTAGE_BACKOFF = Backoff(base=0.1, factor=2.0, cap=2.0)
#: answers that say the website (or its proxy) did not take the request: safe to send again
UNAVAILABLE = frozenset({502, 503, 504})


class RelayClient:
    def __init__(self, site_url: str, token: Callable[[], str], *, outage: float = OUTAGE) -> None:
        self._client = httpx.AsyncClient(base_url=site_url.rstrip("/"), timeout=60.0)
        self._token = token
        self._outage = outage

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, *, once: bool = False, **kwargs: Any) -> Any:
        """One relay call, sent again while the website is away (up to `outage` seconds).

        `once`: a call that must not arrive twice, sent again only if it cannot have arrived.
        """
        r = await retry(
            lambda: self._once(method, path, once, **kwargs),
            retry_on=lambda exc: isinstance(exc, Again),
            seconds=self._outage,
            policy=OUTAGE_BACKOFF,
        )
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise HTTPError(r.status_code, detail)
        return r.json()

    async def _once(self, method: str, path: str, once: bool, **kwargs: Any) -> httpx.Response:
        try:
            r = await self._client.request(
                method, PREFIX + path, headers={"X-Site-Token": self._token()}, **kwargs
            )
        except httpx.TransportError as exc:
            error = HTTPError(502, "the website is unreachable from this controller")
            if once and not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                raise error from None
            raise Again(error) from None
        if r.status_code in UNAVAILABLE:
            raise Again(HTTPError(502, f"the website answered {r.status_code}: {r.text[:200]}"))
        return r

    async def project(
        self, pid: int, *, status: str | None = None, run: int | None = None, wait: float = 0
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"wait": wait}
        if status is not None and run is not None:
            params.update(status=status, run=run)
        result: dict[str, Any] = await self._call("GET", f"/projects/{pid}/", params=params)
        return result

    async def finalize(self, pid: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", f"/projects/{pid}/finalize/")
        return result

    async def send(
        self, pid: int, run: int, step: int, data: bytes, destination: str, memo: str
    ) -> None:
        await self._call(
            "POST",
            f"/projects/{pid}/runs/{run}/messages/",
            once=True,
            params={"step": step, "destination": destination, "memo": memo},
            content=data,
        )

    async def receive(
        self, pid: int, run: int, step: int, wait: float
    ) -> tuple[str, int, list[tuple[str, str, bytes]]]:
        body = await self._call(
            "GET", f"/projects/{pid}/runs/{run}/messages/", params={"step": step, "wait": wait}
        )
        msgs = [(m["sender"], m["memo"], base64.b64decode(m["data"])) for m in body["messages"]]
        return body["status"], int(body["run"]), msgs

    async def report(self, pid: int, run: int, state: str, detail: str = "") -> None:
        await self._call(
            "PUT", f"/projects/{pid}/runs/{run}/state/", json={"state": state, "detail": detail}
        )
