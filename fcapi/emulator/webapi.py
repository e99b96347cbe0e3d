"""What every router of the emulated website shares: its route class, parameters, dependencies.

The website is served by FastAPI so that it can publish the OpenAPI document the platform does
not, but its wire stays that of the hand-written routes it replaced (and of Django REST
framework, which the platform runs). Hence the choices here:
- GET routes also answer HEAD, as Starlette's and Django's routes do;
- an integer path segment is read with Python's `int()`, and a bad one is a 400 whose detail
  is `httputil.int_param`'s (FastAPI would answer 422);
- handlers read their JSON body themselves (`httputil.json_body`), after authentication and the
  lookups, so a bad body never hides a 401 or a 404; `openapi.request_body` documents it;
- every handler and dependency is `async`: FastAPI runs plain functions in a thread pool, and
  the site's state is only ever touched from the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BeforeValidator
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from fcapi.emulator.httputil import error_response, not_an_integer
from fcapi.emulator.site_context import SiteContext
from fcapi.emulator.site_state import UserRec
from fcapi.models import ErrorBody


class SiteRoute(APIRoute):
    """A FastAPI route that, like Starlette's own, answers HEAD wherever it answers GET.

    HEAD is handled as GET (the server leaves the body out), while `methods`, which the
    OpenAPI document lists, keeps only what the API declares.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return super().matches(_head_as_get(scope))

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().handle(_head_as_get(scope), receive, send)


def operation_id(route: APIRoute) -> str:
    """The handler's name: stable, and what a generated client would call the operation."""
    return route.name


def _head_as_get(scope: Scope) -> Scope:
    return {**scope, "method": "GET"} if scope.get("method") == "HEAD" else scope


#: an integer path parameter, parsed exactly as the hand-written routes did (`int()`)
PathInt = Annotated[int, BeforeValidator(int)]


async def validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI checks the typed path parameters: answer a bad one as `int_param` does (400)."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    return error_response(400, not_an_integer(str(first["loc"][-1]), first["input"]))


async def site_context(request: Request) -> SiteContext:
    ctx: SiteContext = request.app.state.site
    return ctx


Ctx = Annotated[SiteContext, Depends(site_context)]

#: documents the `Authorization: Bearer <access>` header; `SiteContext.current_user` checks it
#: (it also accepts the `JWT` scheme simplejwt knows, which HTTPBearer would refuse)
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="accessToken",
    description="the `access` of `POST /api/auth/login/` (or of a refresh)",
)


async def current_user(request: Request, ctx: Ctx, _: Annotated[Any, Depends(_bearer)]) -> UserRec:
    return ctx.current_user(request)


User = Annotated[UserRec, Depends(current_user)]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route for the refusals it can answer, each a `{"detail": ...}`."""
    return {status: {"model": ErrorBody, "description": _REFUSALS[status]} for status in statuses}


_REFUSALS = {
    400: "the request is malformed or not allowed as it is",
    401: "no access token, or one that is invalid or expired",
    403: "only the project's coordinator may do this",
    404: "no such object, or one the user may not see",
    409: "the project's status does not allow this now",
}
