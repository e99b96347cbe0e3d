"""Small HTTP helpers shared by the site and the controller servers.

Errors leave both servers as `{"detail": ...}` with a status code, like Django REST
framework answers, because that is what platform clients parse.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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
    return error_response(exc.status_code, detail, dict(exc.headers or {}))


#: exception handlers both servers install
HANDLERS = {HTTPError: http_error_handler, StarletteHTTPException: starlette_error_handler}


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
        raise HTTPError(400, f"{name} must be an integer, got {value!r}") from None


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"true", "1", "yes", "on"}
