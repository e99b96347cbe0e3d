"""One engine app as a process: started in its own namespaces, spoken to, stopped.

Each app gets private mount and network namespaces from `unshare`: as root `unshare --mount
--net`; as another user the same inside a user namespace (`--user --map-root-user`), which
unprivileged users may make on most kernels. Its own network namespace is what lets several
apps bind the `localhost:5000` their unchanged `main.py` names, on one machine; the sandbox
publishes that port on a Unix socket. Where neither namespace can be made the step fails with
one line saying so: an app run without them would read the host's /mnt/input.

Nothing outlives its controller: the app's processes form their own session, which `stop`
signals as a whole, and each link of the chain (unshare, sandbox, app) is killed by the kernel
when its parent dies (PR_SET_PDEATHSIG, unshare's --kill-child).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from fcapi.emulator.engine.sandbox import die_with_parent

#: how long an app may take from its start to answering GET /status (imports pandas etc.)
READY_DEADLINE = 120.0
STOP_GRACE = 5.0
ISOLATION_ENV = "FEDSTACK_APP_ISOLATION"
FLAGS = {
    "root": ["--mount", "--net", "--kill-child"],
    "user": ["--user", "--map-root-user", "--mount", "--net", "--kill-child"],
}


class AppStartError(Exception):
    """The app could not be started or never answered; the message says why."""


def isolation_mode() -> str:
    """`root` as root, `user` otherwise; FEDSTACK_APP_ISOLATION=root|user picks one."""
    mode = os.environ.get(ISOLATION_ENV) or ("root" if os.geteuid() == 0 else "user")
    if mode not in FLAGS:
        raise AppStartError(f"{ISOLATION_ENV}={mode!r}: expected one of {sorted(FLAGS)}")
    return mode


@functools.cache
def _probe(mode: str, path: str) -> str:
    """'' when `unshare` makes the namespaces of `mode` here, else why not."""
    unshare = shutil.which("unshare", path=path)
    if unshare is None:
        return "the unshare command (util-linux) is not installed"
    try:
        done = subprocess.run(
            [unshare, *FLAGS[mode], "true"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return "" if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


def namespace_command() -> list[str]:
    """The `unshare ...` prefix that gives an app its namespaces, or AppStartError."""
    mode = isolation_mode()
    path = os.environ.get("PATH", os.defpath)
    why = _probe(mode, path)
    if why:
        hint = "run the controller as root" if mode == "user" else "check the kernel's namespaces"
        raise AppStartError(
            f"engine apps need private mount and network namespaces ({mode} mode), "
            f"which cannot be made here: {why}; {hint}, or enable unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1)"
        )
    return [str(shutil.which("unshare", path=path)), *FLAGS[mode]]


class AppProcess:
    """A running engine app: `client` speaks its `/api` routes over the published socket."""

    def __init__(
        self,
        app_dir: Path,
        python: Path,
        input_dir: Path,
        output_dir: Path,
        on_line: Callable[[str], None],
    ) -> None:
        self.app_dir, self.python = app_dir, python
        self.input_dir, self.output_dir = input_dir, output_dir
        self.on_line = on_line
        self._tmp = Path(tempfile.mkdtemp(prefix="fcapp-"))  # short: socket paths are <108 B
        self.socket = self._tmp / "app.sock"
        self.proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.socket)),
            base_url="http://app/api",
            timeout=60.0,
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self, ready_deadline: float = READY_DEADLINE) -> None:
        cmd = [
            *namespace_command(),
            sys.executable,
            "-m",
            "fcapi.emulator.engine.sandbox",
            *("--input", str(self.input_dir), "--output", str(self.output_dir)),
            *("--socket", str(self.socket), "--app-dir", str(self.app_dir)),
            *("--python", str(self.python)),
        ]
        self.proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._pump = asyncio.create_task(self._read_output())
        await self._wait_ready(ready_deadline)

    async def _read_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.on_line(raw.decode(errors="replace").rstrip("\n"))

    async def _wait_ready(self, deadline: float) -> None:
        """Until `GET /status` answers; an app that exits first or never answers fails."""
        assert self.proc is not None
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.returncode is not None:
                raise AppStartError(
                    f"the app exited with status {self.proc.returncode} before it served "
                    "GET /status (its output is in the step's log)"
                )
            with contextlib.suppress(httpx.TransportError):
                r = await self.client.get("/status")
                if r.status_code == 200:
                    return
            await asyncio.sleep(0.2)
        raise AppStartError(f"the app did not answer GET /status within {deadline:.0f} s")

    def exited(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    async def stop(self) -> None:
        """End every process of the app (its session), then close the socket's client."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            _signal_session(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except TimeoutError:
                _signal_session(proc.pid, signal.SIGKILL)
                await proc.wait()
        if proc is not None:
            _signal_session(proc.pid, signal.SIGKILL)  # stragglers of the session, if any
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, STOP_GRACE)
        await self.client.aclose()
        shutil.rmtree(self._tmp, ignore_errors=True)


def _signal_session(sid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, sig)
