"""Bring-your-own hosts: machines fedstack does not own, reached over SSH.

The host key comes from the stack config and is pinned. fedstack provisions the host (or, with
`provision: false`, only checks it), and on destroy stops its own controller and removes its
working directory: nothing else on the host is fedstack's to touch.
"""

from __future__ import annotations

import pulumi

from fedinfra.components.provisioner import HostAccess, Provisioner, ProvisionPlan
from fedinfra.spec import SshPlacement

SITE_TYPE = "fedstack:ssh:Site"


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
