"""Accounts on the emulated website: signup, login/refresh, user info, sites, apps, library.

Accounts and sites are made through these endpoints, never seeded, so the client code
that creates them on featurecloud.ai is exercised too.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fcapi.emulator import auth
from fcapi.emulator.apps import by_id, catalog
from fcapi.emulator.httputil import HTTPError, int_param, json_body
from fcapi.emulator.site_context import SiteContext
from fcapi.emulator.site_state import SiteRec, UserRec
from fcapi.models import LoginRequest, RefreshRequest, SignupRequest, SiteCreate


def _app_json(app_id: int) -> dict[str, Any]:
    info = by_id(app_id)
    assert info is not None
    return {"id": info.id, "slug": info.slug, "name": info.name, "description": ""}


def routes(ctx: SiteContext) -> list[Route]:
    data = ctx.data

    async def login(request: Request) -> Response:
        body = await json_body(request, LoginRequest)
        request.state.user = body.username
        user = ctx.user_by_email(body.username)
        if user is None or not auth.check_password(body.password, user.password):
            raise HTTPError(401, "No active account found with the given credentials")
        return JSONResponse(ctx.issue(user))

    async def refresh(request: Request) -> Response:
        body = await json_body(request, RefreshRequest)
        user = ctx.user_from_token(body.refresh, "refresh")
        if user is None:
            return JSONResponse(
                {"detail": "Token is invalid or expired", "code": "token_not_valid"}, 401
            )
        request.state.user = user.email
        return JSONResponse({"access": ctx.access_for(user)})

    async def logout(request: Request) -> Response:
        ctx.current_user(request)
        return JSONResponse({})

    async def user_info(request: Request) -> Response:
        user = ctx.current_user(request)
        return JSONResponse(
            {
                "id": user.id,
                "email": user.email,
                "firstName": user.firstName,
                "lastName": user.lastName,
                "role": user.role,
            }
        )

    async def signup(request: Request) -> Response:
        body = await json_body(request, SignupRequest)
        request.state.user = body.email
        if "@" not in body.email:
            raise HTTPError(400, {"email": ["Enter a valid email address."]})
        if len(body.password) < 4:
            raise HTTPError(400, {"password": ["This password is too short."]})
        if ctx.user_by_email(body.email) is not None:
            raise HTTPError(400, {"email": ["user with this email already exists."]})
        user = UserRec(
            id=data.new_id("user"),
            email=body.email,
            password=auth.hash_password(body.password),
            firstName=body.firstName,
            lastName=body.lastName,
            role=body.role,
        )
        data.users[user.id] = user
        ctx.save()
        return JSONResponse(
            {
                "id": user.id,
                "email": user.email,
                "firstName": user.firstName,
                "lastName": user.lastName,
                "role": user.role,
            },
            201,
        )

    async def site(request: Request) -> Response:
        user = ctx.current_user(request)
        existing = ctx.site_of(user.id)
        if request.method == "GET":
            if existing is None:
                raise HTTPError(404, "Not found.")
            return JSONResponse(ctx.site_json(existing, user))
        body = await json_body(request, SiteCreate)
        if existing is not None:
            raise HTTPError(400, "this user already has a site")
        fields = body.model_dump()
        rec = SiteRec(
            id=data.new_id("site"), user_id=user.id, token=str(uuid.uuid4()), fields=fields
        )
        data.sites[rec.id] = rec
        ctx.save()
        return JSONResponse(ctx.site_json(rec, user), 201)

    async def apps(request: Request) -> Response:
        return JSONResponse([_app_json(a.id) for a in catalog()])

    async def library(request: Request) -> Response:
        user = ctx.current_user(request)
        return JSONResponse([_app_json(i) for i in user.library if by_id(i)])

    async def purchase(request: Request) -> Response:
        user = ctx.current_user(request)
        app_id = int_param(request.path_params["app_id"], "app_id")
        if by_id(app_id) is None:
            raise HTTPError(404, "Not found.")
        if request.method == "POST":
            if app_id not in user.library:
                user.library.append(app_id)
                ctx.save()
            return JSONResponse(_app_json(app_id), 201)
        if app_id not in user.library:
            raise HTTPError(404, "this app is not in your library")
        user.library.remove(app_id)
        ctx.save()
        return Response(status_code=204)

    return [
        Route("/api/auth/login/", login, methods=["POST"]),
        Route("/api/auth/token/refresh/", refresh, methods=["POST"]),
        Route("/api/auth/logout/", logout, methods=["POST"]),
        Route("/api/auth/user/signup/", signup, methods=["POST"]),
        Route("/api/user/info/", user_info, methods=["GET"]),
        Route("/api/site/", site, methods=["GET", "POST"]),
        Route("/api/apps/", apps, methods=["GET"]),
        Route("/api/apps/purchase/", library, methods=["GET"]),
        Route("/api/apps/{app_id}/purchase/", purchase, methods=["POST", "DELETE"]),
    ]
