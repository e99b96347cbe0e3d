"""libvirt: one Hypervisor component per host (its NAT network and base image) and one
LibvirtSite per VM (host key, disk overlay, cloud-init seed, domain, provisioner).

Written against pulumi_libvirt 0.5.4 (terraform-provider-libvirt 0.8.1, deprecated upstream):
the libvirt specifics stay in this module so a later provider migration touches only it.
Resources with explicit libvirt names are deleted before they are replaced, or libvirt would
refuse a second object of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_libvirt as libvirt
import pulumi_tls as tls

from fedinfra.cloudinit import render_meta_data, render_user_data
from fedinfra.components.provisioner import HostAccess, Provisioner, ProvisionPlan
from fedinfra.spec import Hypervisor, LibvirtPlacement

HYPERVISOR_TYPE = "fedstack:libvirt:Hypervisor"
SITE_TYPE = "fedstack:libvirt:Site"

#: a VM's create includes the wait for its DHCP lease (default 5 min is tight on slow hosts)
DOMAIN_CREATE_TIMEOUT = "10m"
GIB = 1024**3


class LibvirtHypervisor(pulumi.ComponentResource):
    """What every VM on one hypervisor shares: a NAT network with DHCP and the base image.

    Pass `providers=[libvirt.Provider(...)]` in opts: children inherit it, so no resource can
    silently land on the default provider's (local) libvirtd.
    """

    network: libvirt.Network
    base_image: libvirt.Volume

    def __init__(
        self,
        name: str,
        hypervisor: Hypervisor,
        *,
        stack: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(HYPERVISOR_TYPE, name, None, opts)
        self.hypervisor = hypervisor
        child = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        self.network = libvirt.Network(
            f"{name}-net",
            name=f"fedstack-{stack}",
            mode="nat",
            # without addresses libvirt starts no DHCP server and wait_for_lease never ends
            addresses=[hypervisor.network_cidr],
            dhcp=libvirt.NetworkDhcpArgs(enabled=True),
            dns=libvirt.NetworkDnsArgs(enabled=True, local_only=True),
            domain=f"{stack}.fedstack",
            autostart=True,
            opts=child,
        )
        self.base_image = libvirt.Volume(
            f"{name}-base",
            name=f"fedstack-{stack}-base.qcow2",
            pool=hypervisor.pool,
            source=hypervisor.image,
            format="qcow2",
            opts=child,
        )
        self.register_outputs({"network_id": self.network.id, "base_image": self.base_image.id})


@dataclass(frozen=True)
class VmLogin:
    """The login every VM gets: user and the stack's login key."""

    user: str
    public_key: pulumi.Input[str]
    private_key: pulumi.Input[str]


class LibvirtSite(pulumi.ComponentResource):
    """One VM for one site, provisioned. Outputs: address, host_public_key."""

    address: pulumi.Output[str]
    host_public_key: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        placement: LibvirtPlacement,
        *,
        stack: str,
        hypervisor: LibvirtHypervisor,
        login: VmLogin,
        plan: ProvisionPlan,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(SITE_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        replace_first = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        vm_name = f"fedstack-{stack}-{name}"
        pool = hypervisor.hypervisor.pool

        host_key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519", opts=child)
        self.host_public_key = host_key.public_key_openssh.apply(lambda k: k.strip())

        def render(keys: list[str]) -> str:
            return render_user_data(
                hostname=name,
                host_private_key=keys[0],
                host_public_key=keys[1],
                login_user=login.user,
                authorized_keys=(keys[2],),
            )

        rendered: pulumi.Output[str] = pulumi.Output.all(
            host_key.private_key_openssh, host_key.public_key_openssh, login.public_key
        ).apply(render)
        user_data: pulumi.Output[str] = pulumi.Output.secret(rendered)
        meta_data = user_data.apply(lambda ud: render_meta_data(hostname=name, user_data=ud))

        root = libvirt.Volume(
            f"{name}-root",
            name=f"{vm_name}-root.qcow2",
            pool=pool,
            base_volume_id=hypervisor.base_image.id,
            size=placement.disk * GIB,
            format="qcow2",
            opts=replace_first,
        )
        seed = libvirt.CloudInitDisk(
            f"{name}-seed",
            name=f"{vm_name}-seed.iso",
            pool=pool,
            user_data=user_data,
            meta_data=pulumi.Output.unsecret(meta_data),
            opts=replace_first,
        )
        domain = libvirt.Domain(
            f"{name}-vm",
            name=vm_name,
            memory=placement.memory,
            vcpu=placement.vcpus,
            autostart=True,
            cloudinit=seed.id,
            cpu=libvirt.DomainCpuArgs(mode="host-passthrough"),
            disks=[libvirt.DomainDiskArgs(volume_id=root.id)],
            network_interfaces=[
                libvirt.DomainNetworkInterfaceArgs(
                    network_id=hypervisor.network.id, hostname=name, wait_for_lease=True
                )
            ],
            # Ubuntu cloud images expect a serial console
            consoles=[libvirt.DomainConsoleArgs(type="pty", target_port="0", target_type="serial")],
            # the lease file is the address source: the guest agent path is broken in 0.8.1
            qemu_agent=False,
            opts=pulumi.ResourceOptions.merge(
                replace_first,
                pulumi.ResourceOptions(
                    custom_timeouts=pulumi.CustomTimeouts(create=DOMAIN_CREATE_TIMEOUT)
                ),
            ),
        )
        self.address = domain.network_interfaces.apply(_first_address)

        self.provisioner = Provisioner(
            f"{name}-host",
            HostAccess(
                address=self.address,
                port=22,
                user=login.user,
                private_key=login.private_key,
                host_key=self.host_public_key,
            ),
            plan,
            opts=child,
        )
        self.register_outputs({"address": self.address, "host_public_key": self.host_public_key})


def _first_address(nics: Sequence[Any] | None) -> str:
    """The VM's first address, from its first NIC (filled by wait_for_lease)."""
    first = nics[0] if nics else None
    addresses = getattr(first, "addresses", None)
    if addresses is None and isinstance(first, Mapping):
        addresses = first.get("addresses")
    if not isinstance(addresses, list) or not addresses:
        raise ValueError("the VM reported no address: is DHCP running on its network?")
    return str(addresses[0])
