"""The emulated website: the public API (reference §1), the relay and the admin endpoints.

The public handlers live in `accounts` and `projects`, the controllers' side in `relay`;
this module assembles them with the fault/count middleware. Errors are `{"detail": ...}`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fcapi.emulator import accounts, projects, relay
from fcapi.emulator.httputil import HANDLERS, HTTPError
from fcapi.emulator.middleware import FaultsAndCounts
from fcapi.emulator.site_context import SiteContext


def build_site_app(ctx: SiteContext) -> Starlette:
    async def admin_faults(request: Request) -> Response:
        if request.method == "PUT":
            raw = await request.json()
            try:
                ctx.faults.update(raw)
            except ValueError as exc:
                raise HTTPError(400, str(exc)) from None
        return JSONResponse(ctx.faults.faults.model_dump())

    async def admin_requests(request: Request) -> Response:
        if request.method == "DELETE":
            ctx.counts.reset()
        return JSONResponse(ctx.counts.snapshot())

    routes = [
        *accounts.routes(ctx),
        *projects.routes(ctx),
        *relay.routes(ctx),
        Route("/_emulator/faults", admin_faults, methods=["GET", "PUT"]),
        Route("/_emulator/requests", admin_requests, methods=["GET", "DELETE"]),
    ]
    app = Starlette(routes=routes, exception_handlers=HANDLERS)
    app.add_middleware(FaultsAndCounts, faults=ctx.faults, counts=ctx.counts, routes=routes)
    return app
