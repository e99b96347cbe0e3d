"""The emulated website: the public API (reference §1), the relay and the admin endpoints.

The public handlers live in `accounts` and `projects`, the controllers' side in `relay`;
this module assembles them, with the fault/count middleware, into a FastAPI app that serves
the OpenAPI document of the public API at `/openapi.json` and its browsable form at `/docs`.
Errors are `{"detail": ...}`, validation errors included (400, as the platform answers).
"""

from __future__ import annotations

import functools

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from fcapi.emulator import accounts, openapi, projects, relay
from fcapi.emulator.httputil import HANDLERS
from fcapi.emulator.middleware import FaultsAndCounts, admin_routes
from fcapi.emulator.site_context import SiteContext
from fcapi.emulator.webapi import validation_error

TITLE = "FeatureCloud.ai website API"
VERSION = "1.0"
DESCRIPTION = (
    "The website API of FeatureCloud.ai as programs use it, after `reference/featurecloud.md` "
    "§1. The platform publishes no API document: this one is generated from fedstack's "
    "emulator (`python -m fcapi.emulator openapi`), which answers as described here. Errors "
    'are `{"detail": ...}` (Django REST framework style); the emulator\'s own endpoints '
    "(`/_emulator/...`, `/api/_emulator/...`) are left out."
)
#: served for people and tools, not part of the API: neither faulted nor counted
DOC_PATHS = ("/openapi.json", "/docs")


def build_site_app(ctx: SiteContext) -> FastAPI:
    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        routes=[
            *accounts.router.routes,
            *projects.router.routes,
            *relay.router.routes,
            *admin_routes(ctx.faults, ctx.counts),
        ],
        exception_handlers={**HANDLERS, RequestValidationError: validation_error},
        openapi_url=DOC_PATHS[0],
        docs_url=DOC_PATHS[1],
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        separate_input_output_schemas=False,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.site = ctx
    app.openapi = functools.partial(openapi.document, app)  # type: ignore[method-assign]
    app.add_middleware(
        FaultsAndCounts, faults=ctx.faults, counts=ctx.counts, routes=app.routes, exempt=DOC_PATHS
    )
    return app
