"""How the runner reaches a site: the interface, its errors, and what every transport shares.

The runner's phases only ever see `SiteConnection`, so a site on a VM, a partner's server or a
directory on this machine are driven by the same code. `ShellConnection` does what is the same for
every transport on top of its own `run` (start and stop the controller, have the host upload its
own file), with the shell lines of runner.sites.shell; an implementation adds how a command
reaches the host, how a file is written there and where the controller answers.
runner.sites.registry picks the implementation by the inventory's `transport`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

from fedinfra.inventory import SiteEntry
from runner.errors import RunnerError
from runner.sites import shell

#: how long a controller's start or stop command may take before the site is called stuck
CONTROLLER_COMMAND_TIMEOUT = 120.0
#: how long a host may take to stream one of its own files to its controller
HOST_UPLOAD_TIMEOUT = 3600.0
#: how long a site may take to accept a connection, unless the caller says otherwise
CONNECT_TIMEOUT = 30.0


class SiteError(RunnerError):
    """A site could not be reached or did not do what was asked; the message is one line.

    Messages name the site and what failed, and never hold a key, password or token.
    """

    def __init__(self, site: str, message: str) -> None:
        super().__init__(f"site {site}: {message}")
        self.site = site


class HostKeyMismatch(SiteError):
    """The host showed a key the inventory does not pin: possibly another machine."""


class ConnectFailed(SiteError):
    """The host did not answer (or refused the login) before the connect deadline."""


class CommandTimeout(SiteError):
    """A command on the site ran past its timeout and was killed."""


class CommandFailed(SiteError):
    """A command the transport runs for itself (start, stop, upload) exited non-zero."""

    def __init__(self, site: str, message: str, result: CommandResult) -> None:
        super().__init__(site, message)
        self.result = result


class NotConnected(SiteError):
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


class ShellConnection(ABC):
    """What every transport does the same way on top of its own `run`.

    Starting and stopping the controller and having the host stream its own file to its
    controller are shell commands on the site; only how a command reaches the site differs.
    `async with` connects and closes (fcapi's `Closing` only closes: a site must be dialled
    before it is of any use, so entering is connecting here).
    """

    #: the python that runs the host upload program on the site
    host_python: str = "python3"

    def __init__(self, site: SiteEntry, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.site = site
        self.connect_timeout = connect_timeout

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def run(
        self,
        command: str,
        *,
        stdin: bytes | str | None = None,
        timeout: float,  # noqa: ASYNC109
    ) -> CommandResult: ...

    @abstractmethod
    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None: ...

    @abstractmethod
    async def controller_url(self) -> str: ...

    async def start_controller(self) -> None:
        """Start the controller detached; readiness is confirmed by /ping/ afterwards."""
        await self._checked(shell.detached_start(self.site), "starting the controller")

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
        command = shell.host_upload(
            self.host_python, controller_port, project_id, host_path, file_name
        )
        result = await self.run(command, stdin=shell.host_upload_program(), timeout=timeout)
        return parse_bytes_sent(self.site.name, result, host_path)


def tail(text: str, limit: int = 300) -> str:
    """The last line-ish of a command's output, for a one-line error message."""
    text = " ".join(text.strip().split())
    return text if len(text) <= limit else "..." + text[-limit:]


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
