"""One SSH hop: a host the runner logs in to, with its own pinned host keys and login key.

A site is one hop (dialled directly) or two (a jump host, then the site through a tunnel the
jump host opens). Each hop checks its own host's keys and nothing else: the jump host's keys
never vouch for the site, nor the site's for the jump host. Errors name the hop by `where`
("jump host root@hv1:22", "ubuntu@192.168.122.10:22 through jump host root@hv1:22"), so the
user knows which machine refused.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncssh

from fedinfra.inventory import SshAccess
from runner.sites.base import ConnectFailed, HostKeyMismatch

#: a dead host is noticed within about interval * count seconds even on an idle connection
KEEPALIVE_INTERVAL = 10.0
KEEPALIVE_COUNT = 3
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


def load_client_key(
    site: str, access: SshAccess, whose: str = "the inventory's"
) -> asyncssh.SSHKey:
    """The login key, from the inventory's text or a file; errors never quote the key."""
    if access.private_key is not None:
        try:
            return asyncssh.import_private_key(access.private_key.get_secret_value())
        except (asyncssh.KeyImportError, ValueError):
            raise ConnectFailed(
                site, f"{whose} private_key is not an OpenSSH private key without passphrase"
            ) from None
    assert access.private_key_file is not None
    try:
        return asyncssh.read_private_key(access.private_key_file)
    except (OSError, asyncssh.KeyImportError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a usable key"
        raise ConnectFailed(
            site, f"cannot read the private key file {access.private_key_file}: {reason}"
        ) from None


def address_of(access: SshAccess) -> str:
    return f"{access.user}@{access.address}:{access.port}"


@dataclass(frozen=True)
class Hop:
    """A host to log in to; `where` is how errors name it."""

    site: str
    access: SshAccess
    where: str
    client_key: asyncssh.SSHKey
    pinned: tuple[asyncssh.SSHKey, ...]

    @classmethod
    def of(cls, site: str, access: SshAccess, where: str, whose: str) -> Hop:
        pinned = tuple(asyncssh.import_public_key(line) for line in access.host_keys)
        return cls(site, access, where, load_client_key(site, access, whose), pinned)

    async def login(
        self,
        remaining: float,
        deadline: float,
        tunnel: asyncssh.SSHClientConnection | None = None,
    ) -> asyncssh.SSHClientConnection:
        """One dial (through `tunnel` if given); the errors waiting cannot fix become final."""
        client = _PinnedKeyClient()
        try:
            return await self._dial(client, remaining, tunnel)
        except asyncssh.HostKeyNotVerifiable:
            raise self.key_mismatch(client.seen_key) from None
        except asyncssh.PermissionDenied:
            raise ConnectFailed(
                self.site,
                f"login refused at {self.where}: the host does not accept the "
                "inventory's key for this user",
            ) from None
        except (asyncssh.DisconnectError, ConnectionResetError):
            # sshd hangs up during key exchange when it has no key of the pinned types; on
            # a loaded machine the hang-up can arrive as a reset instead
            await self._probe_host_key(deadline, tunnel)
            raise

    async def _dial(
        self,
        client: _PinnedKeyClient,
        remaining: float,
        tunnel: asyncssh.SSHClientConnection | None,
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
                tunnel=tunnel if tunnel is not None else (),
                username=self.access.user,
                client_factory=lambda: client,
                client_keys=[self.client_key],
                known_hosts=(list(self.pinned), [], []),
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
        self, deadline: float, tunnel: asyncssh.SSHClientConnection | None
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
            conn = await self._dial(client, remaining, tunnel, any_key_type=True)
        except asyncssh.HostKeyNotVerifiable:
            raise self.key_mismatch(client.seen_key) from None
        except (OSError, TimeoutError, asyncssh.Error):
            return
        conn.close()  # the host showed a pinned key after all; the normal dial retries

    def key_mismatch(self, seen: asyncssh.SSHKey | None) -> HostKeyMismatch:
        pinned_text = ", ".join(
            f"{k.algorithm.decode()} {k.get_fingerprint()}" for k in self.pinned
        )
        seen_text = (
            f"{seen.algorithm.decode()} {seen.get_fingerprint()}"
            if seen is not None
            else "no key of a pinned type"
        )
        return HostKeyMismatch(
            self.site,
            f"host key mismatch at {self.where}: the host showed {seen_text}, the inventory "
            f"pins {pinned_text}; refusing to connect (if the host was rebuilt, update the "
            "inventory)",
        )
