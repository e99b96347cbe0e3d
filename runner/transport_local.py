"""A site that is a directory and processes on the runner's own machine.

FeatureCloud allows several controllers on one workstation (each on its own port and data
dir); the demo, the benchmark and many tests run sites this way. It does what the SSH transport
does with the same shell lines (detached start, host upload program), so a local run exercises
the code a real run uses, minus the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from pathlib import Path

from fedinfra.inventory import SiteEntry
from runner.transport import (
    CONTROLLER_COMMAND_TIMEOUT,
    HOST_UPLOAD_TIMEOUT,
    CommandFailed,
    CommandResult,
    CommandTimeout,
    TransportError,
    detached_start_command,
    host_upload_command,
    host_upload_program,
    parse_bytes_sent,
    tail,
)

#: how long to wait for a killed process group to be reaped before giving up on it
REAP_TIMEOUT = 5.0


class LocalSite:
    """Sites as local processes: `run` is a subprocess in its own process group."""

    def __init__(self, site: SiteEntry) -> None:
        self.site = site

    async def __aenter__(self) -> LocalSite:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Nothing to dial; the workdir is made so that later steps can rely on it."""
        await asyncio.to_thread(Path(self.site.workdir).mkdir, parents=True, exist_ok=True)

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | str | None = None,
        timeout: float,  # noqa: ASYNC109
    ) -> CommandResult:
        """Run a shell command; past `timeout` its whole process group is killed.

        The command gets a session of its own, so killing the group stops its children too
        and never touches the runner.
        """
        data = stdin.encode() if isinstance(stdin, str) else stdin
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(timeout):
                stdout, stderr = await proc.communicate(data)
        except asyncio.CancelledError:
            # the run is stopping (its deadline, Ctrl-C): the command must not outlive it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REAP_TIMEOUT):
                    await proc.wait()
            raise CommandTimeout(
                self.site.name,
                f"local command still running after {timeout:g} s, killed: {command[:120]}",
            ) from None
        return CommandResult(
            proc.returncode if proc.returncode is not None else -1,
            stdout.decode("utf-8", "replace"),
            stderr.decode("utf-8", "replace"),
        )

    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Write to a temporary name beside the file with its mode, then rename into place."""
        raw = data.encode() if isinstance(data, str) else data
        try:
            await asyncio.to_thread(_write_atomic, Path(path), raw, mode)
        except OSError as exc:
            raise TransportError(self.site.name, f"writing {path} failed: {exc}") from None

    async def start_controller(self) -> None:
        """Start the controller detached, output in `{workdir}/controller.log`."""
        result = await self.run(
            detached_start_command(self.site), timeout=CONTROLLER_COMMAND_TIMEOUT
        )
        if not result.ok:
            raise CommandFailed(
                self.site.name,
                f"starting the controller failed (exit {result.exit_status}): "
                f"{tail(result.stderr or result.stdout)}",
                result,
            )

    async def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.site.controller.port}"

    async def stop_controller(self) -> None:
        result = await self.run(
            self.site.controller.stop_command, timeout=CONTROLLER_COMMAND_TIMEOUT
        )
        if not result.ok:
            raise CommandFailed(
                self.site.name,
                f"stopping the controller failed (exit {result.exit_status}): "
                f"{tail(result.stderr or result.stdout)}",
                result,
            )

    async def upload_host_file(
        self,
        controller_port: int,
        project_id: int,
        host_path: str,
        file_name: str,
        *,
        timeout: float = HOST_UPLOAD_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """The same program the SSH transport sends to a host, run by this machine's python."""
        command = host_upload_command(
            sys.executable, controller_port, project_id, host_path, file_name
        )
        result = await self.run(command, stdin=host_upload_program(), timeout=timeout)
        return parse_bytes_sent(self.site.name, result, host_path)

    async def close(self) -> None:
        """Nothing is held open between calls."""


def _write_atomic(path: Path, raw: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(raw)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
