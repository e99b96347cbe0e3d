"""Jump hosts: one hop between fedstack and a machine it cannot dial directly.

VMs on a `qemu+ssh://` hypervisor sit on that hypervisor's NAT network, and cloud instances in a
private subnet sit behind a bastion: neither pulumi-command nor the runner reaches them from
here. Both go through one jump host instead, the hypervisor itself by default, with the jump's
own host key pinned: pulumi-command as its connection `proxy`, the runner as an SSH tunnel
(`SshAccess.jump` in the inventory). Pure: no Pulumi here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fedinfra.hostkeys import check_host_key


@dataclass(frozen=True)
class Jump:
    """A host to tunnel through, as the stack config gives it."""

    address: str
    port: int
    user: str
    #: the jump's pinned host key, "ssh-ed25519 AAAA..."
    host_key: str
    #: a private key file on the machine that runs pulumi and the runner (as written in config)
    key_file: str


class JumpPlacement(BaseModel):
    """A bastion in the stack config: `jump: {address, port, user, key_file, host_key}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    key_file: str = Field(min_length=1)
    host_key: str

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: str) -> str:
        return check_host_key(value)

    def jump(self) -> Jump:
        return Jump(self.address, self.port, self.user, self.host_key, self.key_file)


def ssh_uri_parts(uri: str) -> tuple[str, str, int | None, str | None]:
    """(user, host, port or None, keyfile or None) of a `qemu+ssh://user@host[:port]/...` URI."""
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{uri!r} has a port that is not a number") from None
    keyfile = parse_qs(parts.query).get("keyfile", [None])[0]
    return parts.username or "", parts.hostname or "", port, keyfile


def hypervisor_jump(uri: str, host_key: str) -> Jump:
    """The hypervisor itself as the jump to its VMs: the URI's host, user and key file."""
    user, host, port, keyfile = ssh_uri_parts(uri)
    if keyfile is None:
        raise ValueError(f"{uri!r} gives no keyfile=")
    return Jump(address=host, port=port or 22, user=user, host_key=host_key, key_file=keyfile)
