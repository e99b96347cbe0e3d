"""ASGI middleware of both servers: injects faults and counts requests by endpoint and user.

Counts use templated paths (`PUT /api/projects/{id}/`) so tests can assert how many calls a
client made per operation. Admin (`/_emulator/`) and relay (`/api/_emulator/`) traffic, and
the website's OpenAPI document and docs page, are neither faulted nor counted: they are not
what the client under test sends.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fcapi.emulator.faults import FaultState
from fcapi.emulator.httputil import HTTPError


class RequestCounts:
    def __init__(self) -> None:
        self.by_endpoint: Counter[str] = Counter()
        self.by_user: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.total = 0

    def record(self, endpoint: str, user: str | None, status: int) -> None:
        self.total += 1
        self.by_endpoint[endpoint] += 1
        self.by_status[str(status)] += 1
        if user:
            self.by_user[user] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_endpoint": dict(self.by_endpoint),
            "by_user": dict(self.by_user),
            "by_status": dict(self.by_status),
        }

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


def template_of(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """`"METHOD /path/{param}/"` for the route that matches, else the raw path."""
    for route in routes:
        match, _ = route.matches(scope)
        if match != Match.NONE and isinstance(route, Route):
            return f"{scope['method']} {route.path}"
    return f"{scope['method']} {scope['path']}"


def _exempt(path: str) -> bool:
    return path.startswith("/_emulator/") or path.startswith("/api/_emulator/")


class FaultsAndCounts:
    """`exempt` names further paths that are neither faulted nor counted (the site's docs)."""

    def __init__(
        self,
        app: ASGIApp,
        faults: FaultState,
        counts: RequestCounts,
        routes: Sequence[BaseRoute],
        exempt: Collection[str] = (),
    ) -> None:
        self.app = app
        self.faults = faults
        self.counts = counts
        self.routes = routes
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(scope["path"]) or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        endpoint = template_of(self.routes, scope)
        status_seen = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
            await send(message)

        try:
            f = self.faults.faults
            if f.latency_ms:
                await asyncio.sleep(f.latency_ms / 1000.0)
            if self.faults.take_429():
                wait = f"{f.retry_after:g}"
                await _reply(
                    send_wrapper,
                    429,
                    {"detail": f"Request was throttled. Expected available in {wait} seconds."},
                    {"retry-after": f"{f.retry_after:g}"},
                )
                return
            if self.faults.draw_5xx():
                await _reply(send_wrapper, f.error_status, {"detail": "emulated server error"}, {})
                return
            await self.app(scope, receive, send_wrapper)
        finally:
            self.counts.record(endpoint, state.get("user"), status_seen)


async def _reply(send: Send, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    raw_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def admin_routes(faults: FaultState, counts: RequestCounts) -> list[Route]:
    """`/_emulator/faults` (GET, PUT merges) and `/_emulator/requests` (GET, DELETE resets),
    the same on the website and on every controller."""

    async def admin_faults(request: Request) -> Response:
        if request.method == "PUT":
            try:
                changes = json.loads(await request.body())
                if not isinstance(changes, dict):  # a list or null cannot be merged
                    raise ValueError("expected a JSON object of fault knobs")
                faults.update(changes)
            except (ValueError, RecursionError) as exc:  # bad JSON, a knob out of range
                raise HTTPError(400, str(exc) or "nested too deeply") from None
        return JSONResponse(faults.faults.model_dump())

    async def admin_requests(request: Request) -> Response:
        if request.method == "DELETE":
            counts.reset()
        return JSONResponse(counts.snapshot())

    return [
        Route("/_emulator/faults", admin_faults, methods=["GET", "PUT"]),
        Route("/_emulator/requests", admin_requests, methods=["GET", "DELETE"]),
    ]
