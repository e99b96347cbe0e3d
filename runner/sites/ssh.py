"""A site reached over SSH (asyncssh): pinned host keys, commands, SFTP, and the controller tunnel.

The host's controller listens on the host's own 127.0.0.1 (as FeatureCloud's does), so the
runner never needs a port open on the host: it reaches the controller through a local port
forward. Host keys come from the inventory only; a key the inventory does not pin is refused
with the fingerprints side by side, because a silently accepted key could mean talking to the
wrong machine with a partner's data. A site behind a jump host (the inventory's `ssh.jump`)
is reached through an SSH tunnel the jump host opens; each hop pins its own keys
(runner.sites.ssh_hop), and everything (commands, SFTP, the forward) uses the tunnelled
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import secrets
import time

import asyncssh

from fcapi.backoff import Backoff, retry
from fedinfra.inventory import SiteEntry, SshAccess
from runner.sites import shell
from runner.sites.base import (
    CONNECT_TIMEOUT,
    CommandResult,
    CommandTimeout,
    ConnectFailed,
    NotConnected,
    ShellConnection,
    SiteError,
)
from runner.sites.ssh_hop import Hop, address_of

log = logging.getLogger(__name__)

#: pauses between dial attempts: from 0.1 s, doubling up to 2 s (a booting host refuses at first)
DIAL_BACKOFF = Backoff(base=0.1, factor=2.0, cap=2.0)
#: how long killing a timed-out command's process group may take
KILL_TIMEOUT = 10.0


class SshConnection(ShellConnection):
    """One site over one SSH connection; forwards are made once per controller port and reused."""

    def __init__(self, site: SiteEntry, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        if site.ssh is None:
            raise ValueError(f"site {site.name}: transport ssh needs an ssh block")
        super().__init__(site, connect_timeout=connect_timeout)
        self.access: SshAccess = site.ssh
        self._conn: asyncssh.SSHClientConnection | None = None
        #: the connection to the jump host the site's connection is tunnelled through
        self._jump: asyncssh.SSHClientConnection | None = None
        self._forwards: dict[int, asyncssh.SSHListener] = {}

    @property
    def _where(self) -> str:
        where = address_of(self.access)
        if self.access.jump is not None:
            where += f" through jump host {address_of(self.access.jump)}"
        return where

    def _hops(self) -> tuple[Hop | None, Hop]:
        """The jump host (if any) and the site, each with its own pinned keys and login key."""
        name, jump = self.site.name, self.access.jump
        first = None
        if jump is not None:
            first = Hop.of(name, jump, f"jump host {address_of(jump)}", "the jump host's")
        return first, Hop.of(name, self.access, self._where, "the inventory's")

    async def connect(self) -> None:
        """Dial until the host answers or the connect deadline passes.

        Refused or unreachable dials are retried with backoff (a host that is still booting
        refuses connections); a wrong host key or a refused login are final at once, since
        waiting cannot fix them. Behind a jump host, the jump host is dialled first and kept
        while the site behind it is retried.
        """
        if self._conn is not None:
            if not self._conn.is_closed():
                return
            await self._close_all()  # the host went away: dial again, forwards included
        jump, site = self._hops()
        deadline = time.monotonic() + self.connect_timeout
        attempts = 0
        last, failed = "no attempt made", jump or site

        async def attempt() -> asyncssh.SSHClientConnection:
            nonlocal attempts, last, failed
            remaining = deadline - time.monotonic()
            if remaining <= 0:  # the deadline passed during the last pause
                raise self._gave_up(failed, attempts, last)
            attempts += 1
            failed = site
            try:
                tunnel = None
                if jump is not None:
                    failed = jump
                    tunnel = await self._jump_connection(jump, remaining, deadline)
                    failed = site
                return await site.login(deadline - time.monotonic(), deadline, tunnel)
            except (OSError, TimeoutError, asyncssh.Error) as exc:
                last = _describe(exc)
                raise

        def waiting(number: int, error: BaseException, pause: float) -> None:
            log.debug(
                "site %s: waiting for sshd at %s (attempt %d: %s; next in %.1f s)",
                self.site.name, failed.where, number, _describe(error), pause,
            )  # fmt: skip

        try:
            self._conn = await retry(
                attempt,
                retry_on=_worth_retrying,
                seconds=self.connect_timeout,
                policy=DIAL_BACKOFF,
                before_sleep=waiting,
            )
        except (OSError, TimeoutError, asyncssh.Error):
            await self._close_all()  # no jump connection left open behind a site that never came
            raise self._gave_up(failed, attempts, last) from None
        except BaseException:
            await self._close_all()  # a final refusal: no jump connection left open
            raise
        log.debug("site %s: connected to %s", self.site.name, self._where)

    async def _jump_connection(
        self, jump: Hop, remaining: float, deadline: float
    ) -> asyncssh.SSHClientConnection:
        """The open connection to the jump host, dialled again only when it went away."""
        if self._jump is None or self._jump.is_closed():
            self._jump = await jump.login(remaining, deadline)
        return self._jump

    def _gave_up(self, hop: Hop, attempts: int, last: str) -> ConnectFailed:
        return ConnectFailed(
            self.site.name,
            f"no SSH login at {hop.where} within {self.connect_timeout:g} s "
            f"({attempts} attempts; last: {last})",
        )

    def _need(self) -> asyncssh.SSHClientConnection:
        if self._conn is None:
            raise NotConnected(self.site.name, f"not connected to {self._where}")
        return self._conn

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | str | None = None,
        timeout: float,  # noqa: ASYNC109
    ) -> CommandResult:
        """Run a shell command on the host; past `timeout` its process group is killed.

        sshd starts each command in a session of its own, but it refuses `signal` requests for
        root logins ("session signalling requires privilege separation"), and closing the
        channel kills nothing. So the command runs under a small wrapper that notes its process
        group in a pid file, and a timeout kills that group over a second channel.
        """
        conn = self._need()
        data = stdin.encode() if isinstance(stdin, str) else stdin
        # an unguessable name in the host's /tmp: the workdir may not exist yet
        pid_file = f"/tmp/.fedstack-run-{secrets.token_hex(8)}.pid"  # noqa: S108
        wrapped = shell.noting_process_group(command, pid_file)
        process: asyncssh.SSHClientProcess[bytes] | None = None
        try:
            async with asyncio.timeout(timeout):
                process = await conn.create_process(wrapped, input=data, encoding=None)
                completed = await process.wait()
        except asyncio.CancelledError:
            # the run is stopping (its deadline, Ctrl-C): the command must not outlive it
            await asyncio.shield(self._kill_group(pid_file))
            raise
        except TimeoutError:
            await self._kill_group(pid_file)
            raise CommandTimeout(
                self.site.name,
                f"command on {self._where} still running after {timeout:g} s, killed: "
                f"{_short(command)}",
            ) from None
        except (OSError, asyncssh.Error) as exc:
            raise SiteError(
                self.site.name,
                f"lost the SSH connection to {self._where} running {_short(command)}: "
                f"{_describe(exc)}",
            ) from None
        finally:
            if process is not None:
                process.close()
        status = completed.exit_status if completed.exit_status is not None else -1
        return CommandResult(status, _text(completed.stdout), _text(completed.stderr))

    async def _kill_group(self, pid_file: str) -> None:
        """KILL the process group a timed-out command noted; best effort, bounded."""
        if self._conn is None:
            return
        try:
            async with asyncio.timeout(KILL_TIMEOUT):
                await self._conn.run(shell.kill_noted_group(pid_file), encoding=None)
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            log.warning(
                "site %s: could not kill a timed-out command on %s: %s",
                self.site.name, self._where, _describe(exc),
            )  # fmt: skip

    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Write through SFTP to a temporary name beside the file, then rename it into place.

        The rename is atomic, so a reader (the controller reading site_info.json) never sees a
        half-written file, and the mode is set before the content exists under its name.
        """
        conn = self._need()
        raw = data.encode() if isinstance(data, str) else data
        directory = posixpath.dirname(path) or "."
        temp = posixpath.join(directory, f".{posixpath.basename(path)}.{secrets.token_hex(4)}")
        try:
            async with conn.start_sftp_client() as sftp:
                await sftp.makedirs(directory, exist_ok=True)
                attrs = asyncssh.SFTPAttrs(permissions=mode)
                async with sftp.open(temp, "wb", attrs) as handle:
                    await handle.write(raw)
                try:
                    await sftp.chmod(temp, mode)
                    await sftp.posix_rename(temp, path)
                except BaseException:
                    with contextlib.suppress(asyncssh.Error, OSError):
                        await sftp.remove(temp)
                    raise
        except (OSError, asyncssh.Error) as exc:
            raise SiteError(
                self.site.name, f"writing {path} on {self._where} failed: {_describe(exc)}"
            ) from None

    async def controller_url(self) -> str:
        """A loopback URL on the runner forwarded to the host's own 127.0.0.1:controller.port."""
        port = self.site.controller.port
        listener = self._forwards.get(port)
        if listener is None:
            conn = self._need()
            try:
                listener = await conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", port)
            except (OSError, asyncssh.Error) as exc:
                raise ConnectFailed(
                    self.site.name,
                    f"no tunnel to the controller at {self._where} 127.0.0.1:{port}: "
                    f"{_describe(exc)}",
                ) from None
            self._forwards[port] = listener
        return f"http://127.0.0.1:{listener.get_port()}"

    async def close(self) -> None:
        await self._close_all()

    async def _close_all(self) -> None:
        """Close the forwards, the site's connection, then the jump host's (innermost first)."""
        for listener in self._forwards.values():
            listener.close()
        self._forwards.clear()
        conns = [c for c in (self._conn, self._jump) if c is not None]
        self._conn = self._jump = None
        for conn in conns:
            conn.close()
            try:
                async with asyncio.timeout(5.0):
                    await conn.wait_closed()
            except TimeoutError:
                log.debug("site %s: a connection for %s did not close in 5 s", self.site.name,
                          self._where)  # fmt: skip


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return "" if data is None else str(data)


def _short(command: str, limit: int = 120) -> str:
    first = command.strip().splitlines()[0] if command.strip() else ""
    return first if len(first) <= limit else first[:limit] + "..."


def _worth_retrying(exc: BaseException) -> bool:
    """A dial that failed for a reason time may fix (refused, unreachable, a hang-up)."""
    return isinstance(exc, OSError | TimeoutError | asyncssh.Error)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
