"""Bring-your-own hosts (`ssh:` sites): machines fedstack does not own, reached over SSH.

The host key comes from the stack config and is pinned; the private key is a file the user
names, read by `fedinfra.stack` and named (not copied) in the inventory. fedstack provisions
the host (or, with `provision: false`, only checks it), and on destroy stops its own controller
and removes its working directory: nothing else on the host is fedstack's to touch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pulumi
from pydantic import Field, field_validator

from fedinfra.backends.base import Backend, Deployment, Host, Placed, Placement
from fedinfra.components.provisioner import HostAccess, Provisioner, ProvisionPlan
from fedinfra.hostkeys import check_host_key

SITE_TYPE = "fedstack:ssh:Site"

_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class SshPlacement(Placement):
    """An existing host ("bring your own"), reached over SSH with a pinned host key."""

    address: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    user: str
    #: the private key fedstack logs in with, a file on the machine running pulumi and the runner
    key_file: str = Field(min_length=1)
    #: the host's public key as in known_hosts without the host name: "ssh-ed25519 AAAA..."
    #: (ed25519 or ECDSA: see fedinfra.hostkeys for why not ssh-rsa)
    host_key: str
    #: False: the administrator forbids changes; fedstack only checks the host
    provision: bool = True

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: str) -> str:
        return check_host_key(value)

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not _UNIX_USER.match(value):
            raise ValueError(f"{value!r} is not a Unix user name")
        return value


class ByoSite(pulumi.ComponentResource):
    """One existing host for one site. Outputs: address, host_public_key."""

    address: pulumi.Output[str]
    host_public_key: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        placement: SshPlacement,
        *,
        private_key: pulumi.Input[str],
        plan: ProvisionPlan,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(SITE_TYPE, name, None, opts)
        self.address = pulumi.Output.from_input(placement.address)
        self.host_public_key = pulumi.Output.from_input(placement.host_key)
        self.provisioner = Provisioner(
            f"{name}-host",
            HostAccess(
                address=placement.address,
                port=placement.port,
                user=placement.user,
                private_key=private_key,
                host_key=placement.host_key,
            ),
            plan,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"address": self.address, "host_public_key": self.host_public_key})


class SshBackend(Backend[SshPlacement]):
    """Only the command provider: nothing is made, the host is provisioned (or checked)."""

    name = "ssh"
    placement = SshPlacement
    summary = "{address, port, user, key_file, host_key, provision}"
    makes_machines = False

    def provisions(self, placement: SshPlacement) -> bool:
        return placement.provision

    def key_file(self, placement: SshPlacement) -> str | None:
        return placement.key_file

    def declare(self, deploy: Deployment, sites: Sequence[Placed[SshPlacement]]) -> list[Host]:
        hosts: list[Host] = []
        for site in sites:
            host = ByoSite(
                site.name,
                site.placement,
                private_key=deploy.key_texts[site.name],
                plan=site.plan,
                opts=pulumi.ResourceOptions(parent=deploy.parent, providers=[deploy.command]),
            )
            hosts.append(
                Host(
                    name=site.name,
                    address=host.address,
                    host_key=host.host_public_key,
                    port=site.placement.port,
                    user=site.placement.user,
                    private_key_file=deploy.key_files.get(site.name),
                )
            )
        return hosts
