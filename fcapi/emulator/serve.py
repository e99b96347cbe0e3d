"""Serving the site and controller apps: in-process for tests, or from the CLI.

Uvicorn serves on a socket bound beforehand, so `port=0` yields a known free port without
a race, and the URL is printed/yielded only once the server accepts connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from fcapi.backoff import Backoff, poll
from fcapi.emulator.engine.folders import AppFolder
from fcapi.emulator.faults import Faults, FaultState

STARTUP_DEADLINE = 15.0
#: a server on loopback starts within milliseconds: look again soon, never wait long
STARTUP_POLL = Backoff(base=0.005, factor=2.0, cap=0.1)


@dataclass
class RunningServer:
    """A served emulator: `.url` to talk to it, `.context` to inspect it in tests."""

    url: str
    server: uvicorn.Server
    context: Any = None
    data_dir: Path | None = None


def bind(host: str, port: int) -> socket.socket:
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only when it is explicit;
    # without it every keep-alive response waits ~40 ms (Nagle against delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that also runs `on_exit` in its loop when a signal asks it to stop.

    The site uses it to release its long polls at once, so SIGTERM does not wait out the
    graceful-shutdown timeout for controllers that are still polling.
    """

    on_exit: Callable[[], None] | None = None
    loop: asyncio.AbstractEventLoop | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.on_exit is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(self.on_exit)
        super().handle_exit(sig, frame)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets=sockets)


def make_server(app: Starlette) -> _Server:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=30,
    )
    return _Server(config)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def fault_state(faults: Faults | dict[str, Any] | None) -> FaultState:
    if isinstance(faults, dict):
        faults = Faults.model_validate(faults)
    return FaultState(faults)


@contextlib.asynccontextmanager
async def _serving(
    app: Starlette, host: str, port: int, context: Any
) -> AsyncIterator[RunningServer]:
    sock = bind(host, port)
    server = make_server(app)
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def started() -> bool:
        if task.done():
            task.result()
            raise RuntimeError("the emulator server stopped while starting")
        return bool(server.started)

    await poll(
        started,
        bool,
        seconds=STARTUP_DEADLINE,
        what="the emulator server to start",
        policy=STARTUP_POLL,
    )
    try:
        yield RunningServer(url=url_of(sock), server=server, context=context)
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except TimeoutError:
            server.force_exit = True
            await task
        sock.close()


@contextlib.asynccontextmanager
async def running_site(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    state: Path | str | None = None,
    faults: Faults | dict[str, Any] | None = None,
) -> AsyncIterator[RunningServer]:
    """An emulated featurecloud.ai website on `host:port` for the duration of the block."""
    from fcapi.emulator.site_context import SiteContext
    from fcapi.emulator.site_server import build_site_app

    ctx = SiteContext(Path(state) if state else None, fault_state(faults))
    async with _serving(build_site_app(ctx), host, port, ctx) as running:
        try:
            yield running
        finally:
            ctx.shutdown()


@contextlib.asynccontextmanager
async def running_controller(
    site_url: str,
    data_dir: Path | str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    faults: Faults | dict[str, Any] | None = None,
    run_timeout: float = 3600.0,
    watch_timeout: float = 24 * 3600.0,
    folders: dict[str, AppFolder] | None = None,
    app_poll: float = 1.0,
) -> AsyncIterator[RunningServer]:
    """An emulated controller; fault `die_mid_run` stops this server instead of the process.

    `folders` registers engine apps by slug (`fcapi.emulator.engine.folders`)."""
    from fcapi.emulator.controller_server import ControllerContext, build_controller_app

    holder: dict[str, uvicorn.Server] = {}

    def die() -> None:
        server = holder.get("server")
        if server is not None:
            server.should_exit = True

    os.makedirs(data_dir, exist_ok=True)
    ctx = ControllerContext(
        site_url,
        Path(data_dir),
        fault_state(faults),
        die=die,
        run_timeout=run_timeout,
        watch_timeout=watch_timeout,
        folders=folders,
        app_poll=app_poll,
    )
    async with _serving(build_controller_app(ctx), host, port, ctx) as running:
        holder["server"] = running.server
        running.data_dir = Path(data_dir)
        yield running


def serve_forever(
    app: Starlette,
    host: str,
    port: int,
    kind: str,
    pid_file: Path | None = None,
    on_exit: Callable[[], None] | None = None,
) -> None:
    """CLI: bind, announce the URL on stdout's first line, serve until SIGINT/SIGTERM."""
    sock = bind(host, port)
    server = make_server(app)
    server.on_exit = on_exit
    if pid_file is not None:
        pid_file.write_text(f"{os.getpid()}\n")
    print(f"fcapi-emulator {kind} listening on {url_of(sock)}", flush=True)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the previous handler:
    # make that an exit with status 0, since stopping on request is success.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    finally:
        sock.close()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
    exit_without_teardown()


def exit_without_teardown() -> None:
    """Exit 0 once the server has shut down, skipping the interpreter's teardown.

    The graceful shutdown has already closed what the process holds (the lifespan ends the
    controller's runs and app processes, the sockets are closed); what is left is freeing
    every module's objects, ~0.1 s of CPU per process, and a hundred controllers stopped
    together on two cores spent seconds on it. Buffered output is flushed first.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)
