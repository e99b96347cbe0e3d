"""A site reached over SSH (asyncssh): pinned host keys, commands, SFTP, and the controller tunnel.

The host's controller listens on the host's own 127.0.0.1 (as FeatureCloud's does), so the
runner never needs a port open on the host: it reaches the controller through a local port
forward. Host keys come from the inventory only; a key the inventory does not pin is refused
with the fingerprints side by side, because a silently accepted key could mean talking to the
wrong machine with a partner's data.
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
    HostKeyMismatch,
    NotConnected,
    ShellConnection,
    SiteError,
)

log = logging.getLogger(__name__)

#: pauses between dial attempts: from 0.1 s, doubling up to 2 s (a booting host refuses at first)
DIAL_BACKOFF = Backoff(base=0.1, factor=2.0, cap=2.0)
#: a dead host is noticed within about interval * count seconds even on an idle connection
KEEPALIVE_INTERVAL = 10.0
KEEPALIVE_COUNT = 3
#: how long killing a timed-out command's process group may take
KILL_TIMEOUT = 10.0
#: how long the diagnostic dial after a handshake hang-up may take
PROBE_TIMEOUT = 5.0


class _PinnedKeyClient(asyncssh.SSHClient):
    """Remembers the key a host showed when it was not a pinned one, to report its fingerprint.

    asyncssh only calls `validate_host_public_key` for keys outside `known_hosts`; answering
    False keeps the refusal, and the key seen makes the error message useful.
    """

    def __init__(self) -> None:
        self.seen_key: asyncssh.SSHKey | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.seen_key = key
        return False


def _load_client_key(site: str, access: SshAccess) -> asyncssh.SSHKey:
    """The login key, from the inventory's text or a file; errors never quote the key."""
    if access.private_key is not None:
        try:
            return asyncssh.import_private_key(access.private_key.get_secret_value())
        except (asyncssh.KeyImportError, ValueError):
            raise ConnectFailed(
                site, "the inventory's private_key is not an OpenSSH private key without passphrase"
            ) from None
    assert access.private_key_file is not None
    try:
        return asyncssh.read_private_key(access.private_key_file)
    except (OSError, asyncssh.KeyImportError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a usable key"
        raise ConnectFailed(
            site, f"cannot read the private key file {access.private_key_file}: {reason}"
        ) from None


def _pinned_keys(access: SshAccess) -> list[asyncssh.SSHKey]:
    return [asyncssh.import_public_key(line) for line in access.host_keys]


class SshConnection(ShellConnection):
    """One site over one SSH connection; forwards are made once per controller port and reused."""

    def __init__(self, site: SiteEntry, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        if site.ssh is None:
            raise ValueError(f"site {site.name}: transport ssh needs an ssh block")
        super().__init__(site, connect_timeout=connect_timeout)
        self.access: SshAccess = site.ssh
        self._conn: asyncssh.SSHClientConnection | None = None
        self._forwards: dict[int, asyncssh.SSHListener] = {}

    @property
    def _where(self) -> str:
        return f"{self.access.user}@{self.access.address}:{self.access.port}"

    async def connect(self) -> None:
        """Dial until the host answers or the connect deadline passes.

        Refused or unreachable dials are retried with backoff (a host that is still booting
        refuses connections); a wrong host key or a refused login are final at once, since
        waiting cannot fix them.
        """
        if self._conn is not None:
            if not self._conn.is_closed():
                return
            self._drop()  # the host went away: dial again, forwards included
        client_key = _load_client_key(self.site.name, self.access)
        pinned = _pinned_keys(self.access)
        deadline = time.monotonic() + self.connect_timeout
        attempts = 0
        last = "no attempt made"

        async def attempt() -> asyncssh.SSHClientConnection:
            nonlocal attempts, last
            remaining = deadline - time.monotonic()
            if remaining <= 0:  # the deadline passed during the last pause
                raise self._gave_up(attempts, last)
            attempts += 1
            try:
                return await self._attempt(client_key, pinned, remaining, deadline)
            except (OSError, TimeoutError, asyncssh.Error) as exc:
                last = _describe(exc)
                raise

        def waiting(number: int, error: BaseException, pause: float) -> None:
            log.debug(
                "site %s: waiting for sshd at %s (attempt %d: %s; next in %.1f s)",
                self.site.name, self._where, number, _describe(error), pause,
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
            raise self._gave_up(attempts, last) from None
        log.debug("site %s: connected to %s", self.site.name, self._where)

    def _gave_up(self, attempts: int, last: str) -> ConnectFailed:
        return ConnectFailed(
            self.site.name,
            f"no SSH login at {self._where} within {self.connect_timeout:g} s "
            f"({attempts} attempts; last: {last})",
        )

    async def _attempt(
        self,
        client_key: asyncssh.SSHKey,
        pinned: list[asyncssh.SSHKey],
        remaining: float,
        deadline: float,
    ) -> asyncssh.SSHClientConnection:
        """One dial; the errors waiting cannot fix become final ones."""
        client = _PinnedKeyClient()
        try:
            return await self._dial(client, client_key, pinned, remaining)
        except asyncssh.HostKeyNotVerifiable:
            raise self._key_mismatch(client.seen_key, pinned) from None
        except asyncssh.PermissionDenied:
            raise ConnectFailed(
                self.site.name,
                f"login refused at {self._where}: the host does not accept the "
                "inventory's key for this user",
            ) from None
        except (asyncssh.DisconnectError, ConnectionResetError):
            # sshd hangs up during key exchange when it has no key of the pinned types; on
            # a loaded machine the hang-up can arrive as a reset instead
            await self._probe_host_key(client_key, pinned, deadline)
            raise

    async def _dial(
        self,
        client: _PinnedKeyClient,
        client_key: asyncssh.SSHKey,
        pinned: list[asyncssh.SSHKey],
        remaining: float,
        *,
        any_key_type: bool = False,
    ) -> asyncssh.SSHClientConnection:
        """One connection attempt, bounded by `remaining` seconds.

        Only the pinned key types are offered, so a host holding several keys shows a pinned
        one; `any_key_type` offers all, to learn what a host without such a key has.
        """
        async with asyncio.timeout(remaining):
            return await asyncssh.connect(
                self.access.address,
                self.access.port,
                username=self.access.user,
                client_factory=lambda: client,
                client_keys=[client_key],
                known_hosts=(pinned, [], []),
                server_host_key_algs="default" if any_key_type else (),
                agent_path=None,
                config=None,
                preferred_auth="publickey",
                connect_timeout=remaining,
                login_timeout=remaining,
                keepalive_interval=KEEPALIVE_INTERVAL,
                keepalive_count_max=KEEPALIVE_COUNT,
            )

    async def _probe_host_key(
        self, client_key: asyncssh.SSHKey, pinned: list[asyncssh.SSHKey], deadline: float
    ) -> None:
        """Raise HostKeyMismatch if the host answers with a key, of any type, not pinned.

        Called after a hang-up during the handshake, which is what sshd does when it has no
        key of the types offered; anything else (still booting, flaky network) returns quietly
        and the caller keeps retrying.
        """
        client = _PinnedKeyClient()
        remaining = min(PROBE_TIMEOUT, deadline - time.monotonic())
        if remaining <= 0:
            return
        try:
            conn = await self._dial(client, client_key, pinned, remaining, any_key_type=True)
        except asyncssh.HostKeyNotVerifiable:
            raise self._key_mismatch(client.seen_key, pinned) from None
        except (OSError, TimeoutError, asyncssh.Error):
            return
        conn.close()  # the host showed a pinned key after all; the normal dial retries

    def _key_mismatch(
        self, seen: asyncssh.SSHKey | None, pinned: list[asyncssh.SSHKey]
    ) -> HostKeyMismatch:
        pinned_text = ", ".join(f"{k.algorithm.decode()} {k.get_fingerprint()}" for k in pinned)
        seen_text = (
            f"{seen.algorithm.decode()} {seen.get_fingerprint()}"
            if seen is not None
            else "no key of a pinned type"
        )
        return HostKeyMismatch(
            self.site.name,
            f"host key mismatch at {self._where}: the host showed {seen_text}, the inventory "
            f"pins {pinned_text}; refusing to connect (if the host was rebuilt, update the "
            "inventory)",
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

    def _drop(self) -> asyncssh.SSHClientConnection | None:
        """Forget the connection and its forwards; return the connection to close."""
        for listener in self._forwards.values():
            listener.close()
        self._forwards.clear()
        conn, self._conn = self._conn, None
        return conn

    async def close(self) -> None:
        conn = self._drop()
        if conn is not None:
            conn.close()
            try:
                async with asyncio.timeout(5.0):
                    await conn.wait_closed()
            except TimeoutError:
                log.debug("site %s: connection to %s did not close in 5 s", self.site.name,
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
