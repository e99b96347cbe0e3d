"""How the runner reaches a site: one interface, an SSH and a local implementation.

The runner's phases only ever see `SiteConnection`, so a site on a VM, a partner's server or a
directory on this machine are driven by the same code. The pieces both implementations share
(the detached start command, the host upload command) live here so that there is one code path
for what runs on a host, whichever way the runner got there.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import resources
from typing import Protocol, Self, runtime_checkable

from fedinfra.inventory import SiteEntry

#: how long a controller's start or stop command may take before the site is called stuck
CONTROLLER_COMMAND_TIMEOUT = 120.0
#: how long a host may take to stream one of its own files to its controller
HOST_UPLOAD_TIMEOUT = 3600.0


class TransportError(Exception):
    """A site could not be reached or did not do what was asked; the message is one line.

    Messages name the site and what failed, and never hold a key, password or token.
    """

    def __init__(self, site: str, message: str) -> None:
        super().__init__(f"site {site}: {message}")
        self.site = site


class HostKeyMismatch(TransportError):
    """The host showed a key the inventory does not pin: possibly another machine."""


class ConnectFailed(TransportError):
    """The host did not answer (or refused the login) before the connect deadline."""


class CommandTimeout(TransportError):
    """A command on the site ran past its timeout and was killed."""


class CommandFailed(TransportError):
    """A command the transport runs for itself (start, stop, upload) exited non-zero."""

    def __init__(self, site: str, message: str, result: CommandResult) -> None:
        super().__init__(site, message)
        self.result = result


class NotConnected(TransportError):
    """A method was called before `connect()` or after `close()`."""


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@runtime_checkable
class SiteConnection(Protocol):
    """What the runner's phases may do with a site; see docs/CONTRACTS.md "runner transports"."""

    site: SiteEntry

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def connect(self) -> None: ...

    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None: ...

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | str | None = None,
        timeout: float,  # noqa: ASYNC109
    ) -> CommandResult: ...

    async def start_controller(self) -> None: ...

    async def controller_url(self) -> str: ...

    async def stop_controller(self) -> None: ...

    async def upload_host_file(
        self,
        controller_port: int,
        project_id: int,
        host_path: str,
        file_name: str,
        *,
        timeout: float = HOST_UPLOAD_TIMEOUT,  # noqa: ASYNC109
    ) -> int: ...

    async def close(self) -> None: ...


class ShellSite(ABC):
    """What both transports do the same way on top of their own `run`.

    Starting and stopping the controller and having the host stream its own file to its
    controller are shell commands on the site; only how a command reaches the site differs.
    """

    site: SiteEntry
    #: the python that runs the host upload program on the site
    host_python: str = "python3"

    @abstractmethod
    async def run(
        self,
        command: str,
        *,
        stdin: bytes | str | None = None,
        timeout: float,  # noqa: ASYNC109
    ) -> CommandResult: ...

    async def start_controller(self) -> None:
        """Start the controller detached; readiness is confirmed by /ping/ afterwards."""
        await self._checked(detached_start_command(self.site), "starting the controller")

    async def stop_controller(self) -> None:
        await self._checked(self.site.controller.stop_command, "stopping the controller")

    async def _checked(self, command: str, what: str) -> None:
        result = await self.run(command, timeout=CONTROLLER_COMMAND_TIMEOUT)
        if not result.ok:
            raise CommandFailed(
                self.site.name,
                f"{what} failed (exit {result.exit_status}): "
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
        """The host streams its own file to its own controller; the bytes never reach us."""
        command = host_upload_command(
            self.host_python, controller_port, project_id, host_path, file_name
        )
        result = await self.run(command, stdin=host_upload_program(), timeout=timeout)
        return parse_bytes_sent(self.site.name, result, host_path)


def open_site(site: SiteEntry, *, connect_timeout: float = 30.0) -> SiteConnection:
    """A connection object for the site's transport; nothing is dialled until `connect()`."""
    if site.transport == "local":
        from runner.sites.local import LocalSite

        return LocalSite(site)
    from runner.sites.ssh import SshSite

    return SshSite(site, connect_timeout=connect_timeout)


def tail(text: str, limit: int = 300) -> str:
    """The last line-ish of a command's output, for a one-line error message."""
    text = " ".join(text.strip().split())
    return text if len(text) <= limit else "..." + text[-limit:]


def detached_start_command(site: SiteEntry) -> str:
    """A shell line that starts the controller in the background and returns at once.

    The start command may be a long-running server (the emulator) or a CLI that exits after
    starting a container (`featurecloud controller start`); either way the runner must not hold
    a channel or a pipe open on it, so it gets its own session (`setsid`), survives the channel's
    end (`nohup`), and appends to a log in the site's workdir (a marked section per start) that a
    person can read later.
    """
    workdir = shlex.quote(site.workdir)
    data_dir = shlex.quote(site.controller.data_dir)
    start = shlex.quote(site.controller.start_command)
    detach = "$(command -v setsid)"  # empty where there is none (macOS): nohup alone then
    return (
        f"mkdir -p {workdir} {data_dir} && cd {workdir} && "
        f'echo "== $(date -u +%FT%TZ) start" >>controller.log && '
        f"{{ nohup {detach} sh -c {start} >>controller.log 2>&1 </dev/null & }} && echo started"
    )


def host_upload_program() -> str:
    """The source of runner/sites/hostupload.py, sent to the host's python on stdin."""
    return resources.files("runner.sites").joinpath("hostupload.py").read_text(encoding="utf-8")


def host_upload_command(
    python: str, controller_port: int, project_id: int, host_path: str, file_name: str
) -> str:
    """`python - ARGS`: the program comes on stdin, so nothing has to be installed on the host."""
    args = [str(controller_port), str(project_id), host_path, file_name]
    return " ".join([shlex.quote(python), "-", *map(shlex.quote, args)])


def parse_bytes_sent(site: str, result: CommandResult, host_path: str) -> int:
    """The byte count hostupload printed, or a one-line error saying why the upload failed."""
    if result.exit_status != 0:
        raise CommandFailed(
            site,
            f"uploading host file {host_path} failed (exit {result.exit_status}): "
            f"{tail(result.stderr or result.stdout)}",
            result,
        )
    try:
        return int(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CommandFailed(
            site,
            f"uploading host file {host_path}: no byte count in the output {tail(result.stdout)!r}",
            result,
        ) from None
