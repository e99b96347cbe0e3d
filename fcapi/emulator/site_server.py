"""The emulated website: the public API (reference §1), the relay and the admin endpoints.

The public handlers live in `accounts` and `projects`, the controllers' side in `relay`;
this module assembles them with the fault/count middleware. Errors are `{"detail": ...}`.
"""

from __future__ import annotations

from starlette.applications import Starlette

from fcapi.emulator import accounts, projects, relay
from fcapi.emulator.httputil import HANDLERS
from fcapi.emulator.middleware import FaultsAndCounts, admin_routes
from fcapi.emulator.site_context import SiteContext


def build_site_app(ctx: SiteContext) -> Starlette:
    routes = [
        *accounts.routes(ctx),
        *projects.routes(ctx),
        *relay.routes(ctx),
        *admin_routes(ctx.faults, ctx.counts),
    ]
    app = Starlette(routes=routes, exception_handlers=HANDLERS)
    app.add_middleware(FaultsAndCounts, faults=ctx.faults, counts=ctx.counts, routes=routes)
    return app
