"""Internal endpoints through which controllers run a project together (not platform API).

Controllers authenticate with their site token (`X-Site-Token`, from site_info.json), as
the real controller does with the website. They:
- watch a project (long poll until its status or run changes),
- finalize their uploads (when every member has, the project goes prepare -> running),
- post an app's message, which the website routes (coordinator -> every participant,
  participant -> coordinator, when no destination is given) into per-site inboxes,
- fetch their inbox (long poll) and report running/finished/error per run.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from fcapi.emulator.apps import by_id
from fcapi.emulator.httputil import HTTPError, int_param, json_body
from fcapi.emulator.site_context import Message, SiteContext
from fcapi.emulator.site_state import ProjectRec, SiteRec, UserRec
from fcapi.emulator.webapi import Ctx, SiteRoute
from fcapi.models import ProjectStatus as S

PREFIX = "/api/_emulator/relay"
MAX_WAIT = 30.0


class RunReport(BaseModel):
    state: str
    detail: str = ""


async def _hung_up(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def long_poll(
    ctx: SiteContext, request: Request, pid: int, seconds: float, done: Callable[[], bool]
) -> None:
    """Wait until `done()`, the deadline, the caller hanging up, or shutdown.

    Every change of project `pid` wakes the waiter to re-check `done()` on the server, so a
    change that does not concern it costs no HTTP round trip (100 waiting sites stay cheap).
    Returning on hang-up frees the server at once when a controller stops, instead of
    holding a graceful shutdown for the rest of the poll.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    gone = asyncio.ensure_future(_hung_up(request))
    try:
        while not done() and not ctx.closing and not gone.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            change = asyncio.ensure_future(ctx.pulse(pid).wait(remaining))
            await asyncio.wait({change, gone}, return_when=asyncio.FIRST_COMPLETED)
            change.cancel()
    finally:
        gone.cancel()


def _wait_arg(request: Request) -> float:
    try:
        return min(max(float(request.query_params.get("wait", "0")), 0.0), MAX_WAIT)
    except ValueError:
        raise HTTPError(400, "wait must be a number of seconds") from None


router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=SiteRoute)


@dataclass
class Member:
    """The calling site's project, the site and its user; `run` and `step` when in a run."""

    project: ProjectRec
    site: SiteRec
    user: UserRec
    run: int = 0
    step: int = 0


async def member(request: Request, ctx: Ctx) -> Member:
    """The project of the path, if the site of the `X-Site-Token` is a member of it."""
    site, user = ctx.site_from_token(request)
    pid = int_param(request.path_params["pid"], "project")
    p = ctx.data.projects.get(pid)
    if p is None:
        raise HTTPError(404, f"project {pid} does not exist")
    if user.id not in p.members:
        raise HTTPError(403, f"site {site.fields.get('name')!r} is not a member of project {pid}")
    return Member(p, site, user)


async def in_run(request: Request, m: Annotated[Member, Depends(member)]) -> Member:
    m.run = int_param(request.path_params["run"], "run")
    m.step = int_param(request.query_params.get("step", "1"), "step")
    return m


def view(ctx: SiteContext, p: ProjectRec, site: SiteRec) -> dict[str, Any]:
    """What a controller needs of a project: status, run, app slugs, members, run faults."""
    members = [
        {
            "id": str(s.id) if s else f"user{uid}",
            "name": s.fields.get("name") if s else None,
            "coordinator": uid == p.owner,
        }
        for uid, s in ctx.member_sites(p)
    ]
    steps = []
    for step in p.workflow:
        info = by_id(int(step["federatedApp"]["id"]))
        steps.append(info.slug if info else str(step["federatedApp"]["id"]))
    f = ctx.faults.faults
    return {
        "project": p.id,
        "status": p.status,
        "run": p.run,
        "steps": steps,
        "members": members,
        "me": str(site.id),
        "siteName": site.fields.get("name"),
        "faults": {"app_fail": f.app_fail, "app_hang": f.app_hang, "die_mid_run": f.die_mid_run},
    }


@router.get("/projects/{pid}/")
async def project(request: Request, m: Annotated[Member, Depends(member)], ctx: Ctx) -> Response:
    """The project's view; with `wait`, long-polls until it differs from `status` and `run`."""
    seen = (request.query_params.get("status"), request.query_params.get("run"))
    wait = _wait_arg(request)
    pid, p = m.project.id, m.project

    def changed() -> bool:
        now = ctx.data.projects.get(pid)
        return now is None or seen != (now.status, str(now.run))

    # long poll: answer at once unless the caller already knows this status and run
    if wait > 0:
        await long_poll(ctx, request, pid, wait, changed)
        p = ctx.data.projects.get(pid, p)
    return JSONResponse(view(ctx, p, m.site))


@router.post("/projects/{pid}/finalize/")
async def finalize(m: Annotated[Member, Depends(member)], ctx: Ctx) -> Response:
    """This site is done uploading; the last member to finalize starts the next run."""
    p = m.project
    if p.status != S.PREPARE:
        raise HTTPError(
            409,
            f"project {p.id} is {p.status!r}: the coordinator must set it "
            "to 'prepare' before sites finalize",
        )
    if m.user.id not in p.finalized:
        p.finalized.append(m.user.id)
    if all(uid in p.finalized for uid in p.members):
        p.status = S.RUNNING.value
        p.run += 1
        p.site_states = {}
        p.site_details = {}
    ctx.changed(p.id)
    return JSONResponse(view(ctx, p, m.site))


@router.post("/projects/{pid}/runs/{run}/messages/")
async def post_message(
    request: Request, m: Annotated[Member, Depends(in_run)], ctx: Ctx
) -> Response:
    """An app's message, routed into the inboxes of the sites it is for."""
    p, run = m.project, m.run
    if p.status != S.RUNNING or p.run != run:
        raise HTTPError(409, f"run {run} of project {p.id} is not in progress")
    dest = request.query_params.get("destination", "")
    memo = request.query_params.get("memo", "")
    payload = base64.b64encode(await request.body()).decode()
    sites = {str(s.id): uid for uid, s in ctx.member_sites(p) if s}
    if dest:
        if dest not in sites:
            raise HTTPError(400, f"destination {dest!r} is not a site of project {p.id}")
        targets = [sites[dest]]
    elif m.user.id == p.owner:
        targets = [uid for uid in p.members if uid != p.owner]
    else:
        targets = [p.owner]
    for uid in targets:
        ctx.inbox.setdefault((p.id, run, m.step, uid), []).append(
            Message(str(m.site.id), memo, payload)
        )
    ctx.pulse(p.id).bump()
    return JSONResponse({"delivered": len(targets)})


@router.get("/projects/{pid}/runs/{run}/messages/")
async def get_messages(
    request: Request, m: Annotated[Member, Depends(in_run)], ctx: Ctx
) -> Response:
    """This site's inbox for the run and step (emptied); with `wait`, long-polls for mail."""
    pid, run = m.project.id, m.run
    key = (pid, run, m.step, m.user.id)
    wait = _wait_arg(request)

    def ready() -> bool:
        now = ctx.data.projects.get(pid)
        gone = now is None or now.status != S.RUNNING or now.run != run
        return gone or bool(ctx.inbox.get(key))

    if wait > 0:
        await long_poll(ctx, request, pid, wait, ready)
    msgs = ctx.inbox.pop(key, [])
    p = ctx.data.projects.get(pid, m.project)
    return JSONResponse(
        {
            "status": p.status,
            "run": p.run,
            "messages": [{"sender": x.sender, "memo": x.memo, "data": x.data} for x in msgs],
        }
    )


@router.put("/projects/{pid}/runs/{run}/state/")
async def report(request: Request, m: Annotated[Member, Depends(in_run)], ctx: Ctx) -> Response:
    """This site's state in the run; the last to finish (or the first error) ends the run."""
    p, run = m.project, m.run
    body = await json_body(request, RunReport)
    if body.state not in {"running", "finished", "error"}:
        raise HTTPError(400, "state must be running, finished or error")
    if p.status != S.RUNNING or p.run != run:
        raise HTTPError(409, f"run {run} of project {p.id} is not in progress ({p.status})")
    p.site_states[str(m.user.id)] = body.state
    if body.detail:
        p.site_details[str(m.user.id)] = body.detail[:2000]
    states = [p.site_states.get(str(uid)) for uid in p.members]
    if "error" in states:
        p.status = S.ERROR.value
    elif all(s == "finished" for s in states):
        p.status = S.FINISHED.value
    if p.status != S.RUNNING:
        for key in [k for k in ctx.inbox if k[0] == p.id and k[1] == run]:
            del ctx.inbox[key]
    ctx.changed(p.id)
    return JSONResponse({"status": p.status})
