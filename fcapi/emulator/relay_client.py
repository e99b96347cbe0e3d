"""The controller's side of the relay: httpx calls to the website's internal endpoints.

The site token comes from site_info.json at every call, so a controller started before a
client wrote that file works once it exists.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import httpx

from fcapi.emulator.httputil import HTTPError

PREFIX = "/api/_emulator/relay"


class RelayClient:
    def __init__(self, site_url: str, token: Callable[[], str]) -> None:
        self._client = httpx.AsyncClient(base_url=site_url.rstrip("/"), timeout=60.0)
        self._token = token

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One relay call; transport errors are retried with backoff (3 tries)."""
        delay = 0.2
        for attempt in range(3):
            try:
                r = await self._client.request(
                    method, PREFIX + path, headers={"X-Site-Token": self._token()}, **kwargs
                )
                break
            except httpx.TransportError:
                if attempt == 2:
                    raise HTTPError(
                        502, "the website is unreachable from this controller"
                    ) from None
                await asyncio.sleep(delay)
                delay *= 2
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise HTTPError(r.status_code, detail)
        return r.json()

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
