"""Accounts on the emulated website: signup, login/refresh, user info, sites, apps, library.

Accounts and sites are made through these endpoints, never seeded, so the client code
that creates them on featurecloud.ai is exercised too.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from fcapi.emulator import auth
from fcapi.emulator.apps import by_id, catalog
from fcapi.emulator.httputil import HTTPError, json_body
from fcapi.emulator.openapi import request_body
from fcapi.emulator.schemas import UserInfo
from fcapi.emulator.site_state import SiteRec, UserRec
from fcapi.emulator.webapi import Ctx, PathInt, SiteRoute, User, errors, operation_id
from fcapi.models import (
    AccessToken,
    App,
    LoginRequest,
    RefreshRequest,
    SignupRequest,
    Site,
    SiteCreate,
    TokenPair,
)

router = APIRouter(route_class=SiteRoute, generate_unique_id_function=operation_id)

#: RFC 5321's longest address; the site's own form refuses longer ones
MAX_EMAIL = 254


_Body = TypeVar("_Body", LoginRequest, SignupRequest)


async def _body(request: Request, model: type[_Body]) -> _Body:
    """The body as `model`; one nested too deeply for the JSON parser is a 400, not a 500."""
    try:
        return await json_body(request, model)
    except RecursionError:
        raise HTTPError(400, "JSON parse error - nested too deeply") from None


def _app_json(app_id: int) -> dict[str, Any]:
    info = by_id(app_id)
    assert info is not None
    return App(id=info.id, slug=info.slug, name=info.name, description="").model_dump()


def _user_json(user: UserRec) -> dict[str, Any]:
    return UserInfo(
        id=user.id,
        email=user.email,
        firstName=user.firstName,
        lastName=user.lastName,
        role=user.role,
    ).model_dump()


@router.post(
    "/api/auth/login/",
    tags=["auth"],
    response_model=TokenPair,
    responses=errors(400, 401),
    openapi_extra=request_body(LoginRequest),
)
async def login(request: Request, ctx: Ctx) -> Response:
    """A simplejwt token pair for an email and password."""
    body = await _body(request, LoginRequest)
    request.state.user = body.username[:MAX_EMAIL]
    user = ctx.user_by_email(body.username)
    if user is None or not auth.check_password(body.password, user.password):
        raise HTTPError(401, "No active account found with the given credentials")
    return JSONResponse(ctx.issue(user))


@router.post(
    "/api/auth/token/refresh/",
    tags=["auth"],
    response_model=AccessToken,
    responses=errors(400, 401),
    openapi_extra=request_body(RefreshRequest),
)
async def refresh(request: Request, ctx: Ctx) -> Response:
    """A new access token for a refresh token."""
    body = await json_body(request, RefreshRequest)
    user = ctx.user_from_token(body.refresh, "refresh")
    if user is None:
        return JSONResponse(
            {"detail": "Token is invalid or expired", "code": "token_not_valid"}, 401
        )
    request.state.user = user.email
    return JSONResponse({"access": ctx.access_for(user)})


@router.post("/api/auth/logout/", tags=["auth"], responses=errors(401))
async def logout(user: User) -> Response:
    """Answers an empty object; tokens stay valid until they expire."""
    return JSONResponse({})


@router.post(
    "/api/auth/user/signup/",
    tags=["auth"],
    status_code=201,
    response_model=UserInfo,
    responses=errors(400),
    openapi_extra=request_body(SignupRequest),
)
async def signup(request: Request, ctx: Ctx) -> Response:
    """A new account (the website's "Sign up")."""
    body = await _body(request, SignupRequest)
    request.state.user = body.email[:MAX_EMAIL]
    if "@" not in body.email or len(body.email) > MAX_EMAIL:
        raise HTTPError(400, {"email": ["Enter a valid email address."]})
    if len(body.password) < 4:
        raise HTTPError(400, {"password": ["This password is too short."]})
    if ctx.user_by_email(body.email) is not None:
        raise HTTPError(400, {"email": ["user with this email already exists."]})
    user = UserRec(
        id=ctx.data.new_id("user"),
        email=body.email,
        password=auth.hash_password(body.password),
        firstName=body.firstName,
        lastName=body.lastName,
        role=body.role,
    )
    ctx.data.users[user.id] = user
    ctx.save()
    return JSONResponse(_user_json(user), 201)


@router.get("/api/user/info/", tags=["auth"], response_model=UserInfo, responses=errors(401))
async def user_info(user: User) -> Response:
    """The logged-in user: clients use it to check that a login still holds."""
    return JSONResponse(_user_json(user))


@router.get("/api/site/", tags=["site"], response_model=Site, responses=errors(401, 404))
async def get_site(user: User, ctx: Ctx) -> Response:
    """The user's site; its `token` is what the site's controller knows it by."""
    existing = ctx.site_of(user.id)
    if existing is None:
        raise HTTPError(404, "Not found.")
    return JSONResponse(ctx.site_json(existing, user))


@router.post(
    "/api/site/",
    tags=["site"],
    status_code=201,
    response_model=Site,
    responses=errors(400, 401),
    openapi_extra=request_body(SiteCreate),
)
async def create_site(request: Request, user: User, ctx: Ctx) -> Response:
    """The user's one site (the website's site registration)."""
    existing = ctx.site_of(user.id)
    body = await json_body(request, SiteCreate)
    if existing is not None:
        raise HTTPError(400, "this user already has a site")
    fields = body.model_dump()
    rec = SiteRec(
        id=ctx.data.new_id("site"), user_id=user.id, token=str(uuid.uuid4()), fields=fields
    )
    ctx.data.sites[rec.id] = rec
    ctx.save()
    return JSONResponse(ctx.site_json(rec, user), 201)


@router.get("/api/apps/", tags=["apps"], response_model=list[App])
async def list_apps() -> Response:
    """The app store's catalog; needs no login."""
    return JSONResponse([_app_json(a.id) for a in catalog()])


@router.get("/api/apps/purchase/", tags=["apps"], response_model=list[App], responses=errors(401))
async def list_library(user: User) -> Response:
    """The apps in the user's library: a workflow may only use these."""
    return JSONResponse([_app_json(i) for i in user.library if by_id(i)])


def _known(app_id: int) -> int:
    if by_id(app_id) is None:
        raise HTTPError(404, "Not found.")
    return app_id


@router.post(
    "/api/apps/{app_id}/purchase/",
    tags=["apps"],
    status_code=201,
    response_model=App,
    responses=errors(400, 401, 404),
)
async def add_to_library(app_id: PathInt, user: User, ctx: Ctx) -> Response:
    """Adds the app to the user's library ("Add to library"); again is no error. No body."""
    if _known(app_id) not in user.library:
        user.library.append(app_id)
        ctx.save()
    return JSONResponse(_app_json(app_id), 201)


@router.delete(
    "/api/apps/{app_id}/purchase/",
    tags=["apps"],
    status_code=204,
    responses=errors(400, 401, 404),
)
async def remove_from_library(app_id: PathInt, user: User, ctx: Ctx) -> Response:
    """Removes the app from the user's library."""
    if _known(app_id) not in user.library:
        raise HTTPError(404, "this app is not in your library")
    user.library.remove(app_id)
    ctx.save()
    return Response(status_code=204)
