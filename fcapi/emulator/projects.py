"""Projects and their tokens on the emulated website, with the state machine enforced.

Roles: the creator is the coordinator; only it edits the workflow, manages tokens, prepares
and deletes. Tokens are single use. Moves not in `fcapi.status.REQUESTABLE` get 409.
"""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fcapi.emulator.apps import by_id
from fcapi.emulator.httputil import HTTPError, int_param, json_body
from fcapi.emulator.site_context import SiteContext, now_iso
from fcapi.emulator.site_state import ProjectRec, TokenRec, UserRec
from fcapi.models import ProjectCreate, ProjectStatus, ProjectUpdate, TokenCommand
from fcapi.status import may_request, parse_status

S = ProjectStatus
#: statuses in which the workflow may still be edited
EDITABLE = {S.NEW, S.INIT, S.READY}


class _Join(BaseModel):
    token: str
    cmd: str


def routes(ctx: SiteContext) -> list[Route]:
    data = ctx.data

    async def projects(request: Request) -> Response:
        user = ctx.current_user(request)
        if request.method == "GET":
            mine = [p for p in data.projects.values() if user.id in p.members]
            return JSONResponse([ctx.project_json(p, user) for p in mine])
        body = await json_body(request, ProjectCreate)
        try:
            status = parse_status(body.status)
        except ValueError:
            raise HTTPError(400, {"status": [f'"{body.status}" is not a valid choice.']}) from None
        if status not in EDITABLE:
            raise HTTPError(400, f"a new project cannot start in status {status.value!r}")
        p = ProjectRec(
            id=data.new_id("project"),
            name=body.name,
            description=body.description,
            status=status.value,
            owner=user.id,
            members=[user.id],
            createdAt=now_iso(),
        )
        data.projects[p.id] = p
        ctx.changed(p.id)
        return JSONResponse(ctx.project_json(p, user), 201)

    async def project(request: Request) -> Response:
        user = ctx.current_user(request)
        pid = int_param(request.path_params["id"], "id")
        p = ctx.project_for(pid, user)
        if request.method == "GET":
            return JSONResponse(ctx.project_json(p, user))
        if request.method == "DELETE":
            if user.id != p.owner:
                raise HTTPError(403, "only the coordinator may delete a project")
            if p.status == S.RUNNING:
                raise HTTPError(409, "the project is running: shut it down first")
            del data.projects[pid]
            for t in [t for t in data.tokens.values() if t.project == pid]:
                del data.tokens[t.id]
            ctx.changed(pid)
            return Response(status_code=204)
        body = await json_body(request, ProjectUpdate)
        update_project(ctx, p, user, body)
        ctx.changed(pid)
        return JSONResponse(ctx.project_json(p, user))

    async def tokens(request: Request) -> Response:
        user = ctx.current_user(request)
        pid = int_param(request.path_params["project_id"], "project_id")
        p = ctx.project_for(pid, user)
        if user.id != p.owner:
            raise HTTPError(403, "only the coordinator manages a project's tokens")
        if request.method == "GET":
            return JSONResponse([_token_json(t) for t in data.tokens.values() if t.project == pid])
        body = await json_body(request, TokenCommand)
        if body.cmd != "create":
            raise HTTPError(400, f"unknown cmd {body.cmd!r}: expected 'create'")
        t = TokenRec(
            id=data.new_id("token"),
            token=secrets.token_urlsafe(18),
            project=pid,
            createdAt=now_iso(),
        )
        data.tokens[t.id] = t
        ctx.save()
        return JSONResponse(_token_json(t), 201)

    async def join(request: Request) -> Response:
        user = ctx.current_user(request)
        body = await json_body(request, _Join)
        if body.cmd != "join":
            raise HTTPError(400, f"unknown cmd {body.cmd!r}: expected 'join'")
        t = next((t for t in data.tokens.values() if t.token == body.token), None)
        if t is None:
            raise HTTPError(404, "Invalid token")
        if t.used:
            raise HTTPError(400, "This token has already been used")
        p = data.projects[t.project]
        if user.id in p.members:
            raise HTTPError(400, "you are already a member of this project")
        if p.status in {S.RUNNING, S.PREPARE}:
            raise HTTPError(409, f"the project is {p.status}: join before it is prepared")
        t.used, t.used_by = True, user.id
        p.members.append(user.id)
        ctx.changed(p.id)
        return JSONResponse(
            {"id": t.id, "project": p.id, "role": "participant", "user": user.id, "token": t.token},
            201,
        )

    async def delete_token(request: Request) -> Response:
        user = ctx.current_user(request)
        tid = int_param(request.path_params["id"], "id")
        t = data.tokens.get(tid)
        if t is None or t.project not in data.projects:
            raise HTTPError(404, "Not found.")
        if data.projects[t.project].owner != user.id:
            raise HTTPError(403, "only the coordinator manages a project's tokens")
        del data.tokens[tid]
        ctx.save()
        return Response(status_code=204)

    return [
        Route("/api/projects/", projects, methods=["GET", "POST"]),
        Route("/api/projects/{id}/", project, methods=["GET", "PUT", "DELETE"]),
        Route("/api/project-tokens/", join, methods=["POST"]),
        Route("/api/project-tokens/token/{id}/", delete_token, methods=["DELETE"]),
        Route("/api/project-tokens/{project_id}/", tokens, methods=["GET", "POST"]),
    ]


def _token_json(t: TokenRec) -> dict[str, Any]:
    return {
        "id": t.id,
        "token": t.token,
        "project": t.project,
        "used": t.used,
        "createdAt": t.createdAt,
    }


def update_project(ctx: SiteContext, p: ProjectRec, user: UserRec, body: ProjectUpdate) -> None:
    """Apply a `PUT /api/projects/{id}/`: a workflow, a status move, or both."""
    current = S(p.status)
    if body.workflow is not None:
        if user.id != p.owner:
            raise HTTPError(403, "only the coordinator may change the workflow")
        if current not in EDITABLE:
            raise HTTPError(
                409, f"the workflow cannot change while the project is {current.value!r}"
            )
        steps = []
        for order, step in enumerate(body.workflow):
            app_id = step.federatedApp.id
            if by_id(app_id) is None:
                raise HTTPError(400, f"no app with id {app_id}")
            if app_id not in user.library:
                raise HTTPError(
                    400, f"app {app_id} is not in your library: POST /api/apps/{app_id}/purchase/"
                )
            dumped = step.model_dump()
            dumped.update(id=order + 1, projectId=p.id, order=step.order or order)
            steps.append(dumped)
        p.workflow = steps
    if body.name is not None:
        p.name = body.name
    if body.description is not None:
        p.description = body.description
    if body.status is None or (body.workflow is not None and body.status == ""):
        return
    try:
        wanted = parse_status(body.status)
    except ValueError:
        raise HTTPError(400, {"status": [f'"{body.status}" is not a valid choice.']}) from None
    if wanted == S.PREPARE and user.id != p.owner:
        raise HTTPError(403, "only the coordinator may prepare the project")
    if not may_request(current, wanted):
        word = "shutdown" if wanted == S.STOPPED else wanted.value
        raise HTTPError(409, f"cannot move project {p.id} from {current.value!r} to {word!r}")
    if wanted in {S.READY, S.PREPARE} and not p.workflow:
        raise HTTPError(409, f"project {p.id} has no workflow: PUT one with status 'ready' first")
    p.status = wanted.value
    if wanted in {S.READY, S.PREPARE}:
        p.finalized = []
        p.site_states = {}
        p.site_details = {}
