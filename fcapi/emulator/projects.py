"""Projects and their tokens on the emulated website, with the state machine enforced.

Roles: the creator is the coordinator; only it edits the workflow, manages tokens, prepares
and deletes. Tokens are single use. Moves not in `fcapi.status.REQUESTABLE` get 409.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from fcapi.emulator.apps import by_id
from fcapi.emulator.httputil import HTTPError, json_body
from fcapi.emulator.openapi import request_body
from fcapi.emulator.schemas import JoinedMembership, JoinRequest, ProjectView, TokenView
from fcapi.emulator.site_context import SiteContext, now_iso
from fcapi.emulator.site_state import ProjectRec, TokenRec, UserRec
from fcapi.emulator.webapi import Ctx, PathInt, SiteRoute, User, errors, operation_id
from fcapi.models import ProjectCreate, ProjectStatus, ProjectUpdate, TokenCommand
from fcapi.status import may_request, parse_status

S = ProjectStatus
#: statuses in which the workflow may still be edited
EDITABLE = {S.NEW, S.INIT, S.READY}


router = APIRouter(
    route_class=SiteRoute, tags=["projects"], generate_unique_id_function=operation_id
)


@router.get("/api/projects/", response_model=list[ProjectView], responses=errors(401))
async def list_projects(user: User, ctx: Ctx) -> Response:
    """The projects the user is a member of."""
    mine = [p for p in ctx.data.projects.values() if user.id in p.members]
    return JSONResponse([ctx.project_json(p, user) for p in mine])


@router.post(
    "/api/projects/",
    status_code=201,
    response_model=ProjectView,
    responses=errors(400, 401),
    openapi_extra=request_body(ProjectCreate),
)
async def create_project(request: Request, user: User, ctx: Ctx) -> Response:
    """A new project, its creator the coordinator; it starts without a workflow."""
    body = await json_body(request, ProjectCreate)
    status = _status(body.status)
    if status not in EDITABLE:
        raise HTTPError(400, f"a new project cannot start in status {status.value!r}")
    p = ProjectRec(
        id=ctx.data.new_id("project"),
        name=body.name,
        description=body.description,
        status=status.value,
        owner=user.id,
        members=[user.id],
        createdAt=now_iso(),
    )
    ctx.data.projects[p.id] = p
    ctx.changed(p.id)
    return JSONResponse(ctx.project_json(p, user), 201)


@router.get("/api/projects/{id}/", response_model=ProjectView, responses=errors(400, 401, 404))
async def get_project(id: PathInt, user: User, ctx: Ctx) -> Response:
    """The project; `role` says whether the user coordinates it."""
    return JSONResponse(ctx.project_json(ctx.project_for(id, user), user))


@router.put(
    "/api/projects/{id}/",
    response_model=ProjectView,
    responses=errors(400, 401, 403, 404, 409),
    openapi_extra=request_body(ProjectUpdate),
)
async def update_project(id: PathInt, request: Request, user: User, ctx: Ctx) -> Response:
    """A workflow (with status `ready`), a status move (`ready`, `prepare`, `shutdown`), or both."""
    p = ctx.project_for(id, user)
    body = await json_body(request, ProjectUpdate)
    apply_update(ctx, p, user, body)
    ctx.changed(id)
    return JSONResponse(ctx.project_json(p, user))


@router.delete("/api/projects/{id}/", status_code=204, responses=errors(400, 401, 403, 404, 409))
async def delete_project(id: PathInt, user: User, ctx: Ctx) -> Response:
    """Deletes the project and its tokens (coordinator only, not while it runs)."""
    p = ctx.project_for(id, user)
    if user.id != p.owner:
        raise HTTPError(403, "only the coordinator may delete a project")
    if p.status == S.RUNNING:
        raise HTTPError(409, "the project is running: shut it down first")
    del ctx.data.projects[id]
    for t in [t for t in ctx.data.tokens.values() if t.project == id]:
        del ctx.data.tokens[t.id]
    ctx.changed(id)
    return Response(status_code=204)


@router.post(
    "/api/project-tokens/",
    status_code=201,
    response_model=JoinedMembership,
    responses=errors(400, 401, 404, 409),
    openapi_extra=request_body(JoinRequest),
)
async def join(request: Request, user: User, ctx: Ctx) -> Response:
    """Joins the token's project as a participant; a token serves once."""
    body = await json_body(request, JoinRequest)
    if body.cmd != "join":
        raise HTTPError(400, f"unknown cmd {body.cmd!r}: expected 'join'")
    t = next((t for t in ctx.data.tokens.values() if t.token == body.token), None)
    if t is None:
        raise HTTPError(404, "Invalid token")
    if t.used:
        raise HTTPError(400, "This token has already been used")
    p = ctx.data.projects[t.project]
    if user.id in p.members:
        raise HTTPError(400, "you are already a member of this project")
    if p.status in {S.RUNNING, S.PREPARE}:
        raise HTTPError(409, f"the project is {p.status}: join before it is prepared")
    t.used, t.used_by = True, user.id
    p.members.append(user.id)
    ctx.changed(p.id)
    joined = JoinedMembership(id=t.id, project=p.id, user=user.id, token=t.token)
    return JSONResponse(joined.model_dump(), 201)


@router.delete(
    "/api/project-tokens/token/{id}/", status_code=204, responses=errors(400, 401, 403, 404)
)
async def delete_token(id: PathInt, user: User, ctx: Ctx) -> Response:
    """Deletes a token (coordinator only)."""
    t = ctx.data.tokens.get(id)
    if t is None or t.project not in ctx.data.projects:
        raise HTTPError(404, "Not found.")
    if ctx.data.projects[t.project].owner != user.id:
        raise HTTPError(403, "only the coordinator manages a project's tokens")
    del ctx.data.tokens[id]
    ctx.save()
    return Response(status_code=204)


def _coordinated(ctx: SiteContext, project_id: int, user: UserRec) -> int:
    if user.id != ctx.project_for(project_id, user).owner:
        raise HTTPError(403, "only the coordinator manages a project's tokens")
    return project_id


@router.get(
    "/api/project-tokens/{project_id}/",
    response_model=list[TokenView],
    responses=errors(400, 401, 403, 404),
)
async def list_tokens(project_id: PathInt, user: User, ctx: Ctx) -> Response:
    """The project's tokens, used or not (coordinator only)."""
    pid = _coordinated(ctx, project_id, user)
    return JSONResponse([_token_json(t) for t in ctx.data.tokens.values() if t.project == pid])


@router.post(
    "/api/project-tokens/{project_id}/",
    status_code=201,
    response_model=TokenView,
    responses=errors(400, 401, 403, 404),
    openapi_extra=request_body(TokenCommand),
)
async def create_token(project_id: PathInt, request: Request, user: User, ctx: Ctx) -> Response:
    """A new single-use token to hand to one participant (coordinator only)."""
    pid = _coordinated(ctx, project_id, user)
    body = await json_body(request, TokenCommand)
    if body.cmd != "create":
        raise HTTPError(400, f"unknown cmd {body.cmd!r}: expected 'create'")
    t = TokenRec(
        id=ctx.data.new_id("token"),
        token=secrets.token_hex(16),  # never a leading "-" that a CLI would read as an option
        project=pid,
        createdAt=now_iso(),
    )
    ctx.data.tokens[t.id] = t
    ctx.save()
    return JSONResponse(_token_json(t), 201)


def _status(word: str) -> S:
    try:
        return parse_status(word)
    except ValueError:
        raise HTTPError(400, {"status": [f'"{word}" is not a valid choice.']}) from None


def _token_json(t: TokenRec) -> dict[str, Any]:
    return TokenView(
        id=t.id, token=t.token, project=t.project, used=t.used, createdAt=t.createdAt
    ).model_dump()


def apply_update(ctx: SiteContext, p: ProjectRec, user: UserRec, body: ProjectUpdate) -> None:
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
    wanted = _status(body.status)
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
