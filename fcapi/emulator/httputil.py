"""Small HTTP helpers shared by the site and the controller servers.

Errors leave both servers as `{"detail": ...}` with a status code, like Django REST
framework answers, because that is what platform clients parse.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

M = TypeVar("M", bound=BaseModel)


class HTTPError(Exception):
    """Raised inside a handler to answer `status` with `{"detail": detail}`."""

    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail
        self.headers = headers


def error_response(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return error_response(exc.status, exc.detail, exc.headers)


async def starlette_error_handler(request: Request, exc: Exception) -> Response:
    """Routing errors (unknown path 404, wrong method 405) as `{"detail": ...}` too."""
    assert isinstance(exc, StarletteHTTPException)
    detail = {404: "Not found.", 405: f'Method "{request.method}" not allowed.'}.get(
        exc.status_code, exc.detail
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return error_response(exc.status_code, detail, headers)


def allowed_methods(request: Request) -> str:
    """Every method the path answers, HEAD with GET: Starlette's 405 names only those of the
    first route on the path, and the website has one route per method."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.path_regex.match(request.scope["path"]):
            methods |= route.methods or set()
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


#: exception handlers both servers install
HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    HTTPError: http_error_handler,
    StarletteHTTPException: starlette_error_handler,
}


async def json_body(request: Request, model: type[M]) -> M:
    """Parse the request body into `model`; a bad body is the client's fault (400)."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise HTTPError(400, f"JSON parse error - {exc.msg}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HTTPError(
            400, [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        ) from None


def int_param(value: str | None, name: str) -> int:
    """A required integer query or path parameter (400 when missing or not a number)."""
    if value is None or value == "":
        raise HTTPError(400, f"query parameter {name!r} is required")
    try:
        return int(value)
    except ValueError:
        raise HTTPError(400, not_an_integer(name, value)) from None


def not_an_integer(name: str, value: Any) -> str:
    """The 400 detail of a parameter that is not a number, wherever it is checked."""
    return f"{name} must be an integer, got {value!r}"


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"true", "1", "yes", "on"}
