"""The emulated per-site controller (reference §2): uploads, runs, downloads, logs.

It learns its site from `site_info.json` in its data dir at each use, keeps uploads on its
own disk, and, once it has finalized a project, watches the website until the project runs;
then it runs the app for its site (see `run_driver`). Imports stay lean (no FastAPI, no
numpy) because a benchmark starts 100 of these on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from fcapi.emulator.engine.folders import AppFolder, load_folders
from fcapi.emulator.faults import FaultState
from fcapi.emulator.httputil import HANDLERS, HTTPError, int_param, is_true
from fcapi.emulator.layout import SITE_INFO, RunLayout, list_runs, uploads_dir
from fcapi.emulator.middleware import FaultsAndCounts, RequestCounts, admin_routes
from fcapi.emulator.relay_client import RelayClient
from fcapi.emulator.run_driver import RunSpec, execute_run
from fcapi.files import atomic_target
from fcapi.models import Site

MAX_LOG_LINES = 10_000


class ControllerContext:
    def __init__(
        self,
        site_url: str,
        data_dir: Path,
        faults: FaultState,
        *,
        die: Callable[[], None],
        run_timeout: float = 3600.0,
        watch_timeout: float = 24 * 3600.0,
        folders: dict[str, AppFolder] | None = None,
        app_poll: float = 1.0,
    ) -> None:
        self.site_url = site_url
        self.data_dir = data_dir
        self.faults = faults
        self.counts = RequestCounts()
        self.die = die
        self.run_timeout = run_timeout
        self.watch_timeout = watch_timeout
        #: app folders registered by `--app` (apps.json in the data dir adds more at each run)
        self.folders = dict(folders or {})
        self.app_poll = app_poll
        self.logs: list[dict[str, Any]] = []
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.relay = RelayClient(site_url, lambda: self.site().token)

    def emit(self, level: str, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # UTC, as the platform's
        entry = {"time": stamp, "level": level, "message": message}
        self.logs.append(entry)
        if len(self.logs) > MAX_LOG_LINES:
            del self.logs[: len(self.logs) - MAX_LOG_LINES]

    def site(self) -> Site:
        """This controller's site, read from site_info.json now (clients may write it late)."""
        path = self.data_dir / SITE_INFO
        try:
            return Site.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise HTTPError(
                409,
                f"{SITE_INFO} is missing in the controller's data dir {self.data_dir}: write the "
                "body of GET /api/site/ there to tell the controller which site it serves",
            ) from None
        except (ValidationError, ValueError) as exc:
            raise HTTPError(409, f"{SITE_INFO} is not a site object: {exc}") from None

    def watch(self, pid: int) -> None:
        """Start waiting for project `pid` to run, unless already waiting or running."""
        task = self.tasks.get(pid)
        if task is None or task.done():
            self.tasks[pid] = asyncio.create_task(self._watch(pid))

    async def _watch(self, pid: int) -> None:
        deadline = time.monotonic() + self.watch_timeout
        status: str | None = None
        run: int | None = None
        try:
            while time.monotonic() < deadline:
                remaining = deadline - time.monotonic()
                view = await self.relay.project(
                    pid, status=status, run=run, wait=min(20, remaining)
                )
                status, run = view["status"], int(view["run"])
                if status == "running":
                    await execute_run(
                        RunSpec(
                            relay=self.relay,
                            data_dir=self.data_dir,
                            view=view,
                            own_faults=self.faults.faults,
                            emit=self.emit,
                            die=self.die,
                            run_timeout=self.run_timeout,
                            folders={**load_folders(self.data_dir), **self.folders},
                            app_poll=self.app_poll,
                        )
                    )
                    return
                if status != "prepare":
                    self.emit("info", f"project {pid} is {status!r}: no longer waiting to run")
                    return
            self.emit("error", f"project {pid} did not start within {self.watch_timeout:g} s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.emit("error", f"project {pid}: {exc}")

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(BaseException):
                await task
        await self.relay.aclose()


def _safe_name(name: str) -> str:
    """A plain basename: no directories, no hidden names (the temporary files are ours)."""
    if not name or name.startswith(".") or any(ch in name for ch in "/\\\0"):
        raise HTTPError(400, f"fileName must be a plain file name, got {name!r}")
    return name


def _ctx(request: Request) -> ControllerContext:
    ctx: ControllerContext = request.app.state.controller
    return ctx


async def ping(request: Request) -> Response:
    return JSONResponse({"status": "running"})


async def file_upload(request: Request) -> Response:
    """A file of the site's data for a project, or (`finalize=true`) the end of its uploads."""
    ctx = _ctx(request)
    q = request.query_params
    pid = int_param(q.get("projectId"), "projectId")
    ctx.site()
    view = await ctx.relay.project(pid)
    if view["status"] == "running":
        raise HTTPError(409, f"project {pid} is running: uploads are refused until it ends")
    if is_true(q.get("finalize")):
        # always tell the website (idempotent there): a watcher still alive from an
        # earlier prepare must not make this finalize go uncounted
        view = await ctx.relay.finalize(pid)
        ctx.emit("info", f"project {pid}: uploads finalized")
        ctx.watch(pid)
        return JSONResponse({"detail": "finalized", "projectId": pid, "status": view["status"]})
    name = _safe_name(q.get("fileName") or "")
    size = 0
    with atomic_target(uploads_dir(ctx.data_dir, pid) / name) as f:
        async for chunk in request.stream():  # streamed: the body is never whole in memory
            f.write(chunk)
            size += len(chunk)
    ctx.emit("info", f"project {pid}: received {name} ({size} bytes)")
    return JSONResponse({"fileName": name, "size": size, "projectId": pid})


async def project_runs(request: Request) -> Response:
    pid = int_param(request.query_params.get("projectId"), "projectId")
    return JSONResponse(list_runs(_ctx(request).data_dir, pid))


def _step_file(request: Request, kind: str) -> Path:
    q = request.query_params
    pid = int_param(q.get("projectId"), "projectId")
    run = int_param(q.get("run"), "run")
    step = int_param(q.get("step"), "step")
    layout = RunLayout(_ctx(request).data_dir, pid, run)
    path = layout.result_zip(step) if kind == "result" else layout.log(step)
    if not path.exists():
        raise HTTPError(404, f"no {kind} for project {pid} run {run} step {step}")
    return path


async def file_download(request: Request) -> Response:
    path = _step_file(request, "result")
    return FileResponse(path, media_type="application/zip", filename=path.name)


async def logs_download(request: Request) -> Response:
    path = _step_file(request, "log")
    return FileResponse(path, media_type="text/plain; charset=utf-8", filename=path.name)


async def logs(request: Request) -> Response:
    start = int_param(request.query_params.get("from", "0"), "from")
    return JSONResponse(_ctx(request).logs[max(start, 0) :])


def build_controller_app(ctx: ControllerContext) -> Starlette:
    routes = [
        Route("/ping/", ping, methods=["GET"]),
        Route("/file-upload/", file_upload, methods=["POST"]),
        Route("/project-runs/", project_runs, methods=["GET"]),
        Route("/file-download/", file_download, methods=["GET"]),
        Route("/logs-download/", logs_download, methods=["GET"]),
        Route("/logs/", logs, methods=["GET"]),
        *admin_routes(ctx.faults, ctx.counts),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx.emit("info", f"controller up, data dir {ctx.data_dir}")
        yield
        await ctx.close()

    app = Starlette(routes=routes, exception_handlers=HANDLERS, lifespan=lifespan)
    app.state.controller = ctx
    app.add_middleware(FaultsAndCounts, faults=ctx.faults, counts=ctx.counts, routes=routes)
    return app
