"""libvirt: VMs on one or more libvirt hypervisors (`libvirt:` sites, `fedstack:hypervisors`).

One LibvirtHypervisor component per hypervisor that carries sites (its NAT network and base
image, on its own explicit provider) and one LibvirtSite per VM (host key, disk overlay,
cloud-init seed, domain, provisioner).

Written against pulumi_libvirt 0.5.4 (terraform-provider-libvirt 0.8.1, deprecated upstream):
the libvirt specifics stay in this module so a later provider migration touches only it.
Resources with explicit libvirt names are deleted before they are replaced, or libvirt would
refuse a second object of the same name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_libvirt as libvirt
import pulumi_tls as tls
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fedinfra.backends.base import Backend, Deployment, Host, Placed, Placement
from fedinfra.cloudinit import render_meta_data, render_user_data
from fedinfra.components.provisioner import HostAccess, Provisioner, ProvisionPlan
from fedinfra.hostkeys import check_host_key
from fedinfra.inventory import check_site_name
from fedinfra.jumps import Jump, hypervisor_jump, ssh_uri_parts

HYPERVISOR_TYPE = "fedstack:libvirt:Hypervisor"
SITE_TYPE = "fedstack:libvirt:Site"

#: Ubuntu 24.04 LTS (noble) cloud image; libvirt uploads it once per hypervisor
UBUNTU_2404_IMAGE = "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"

#: a VM's create includes the wait for its DHCP lease (default 5 min is tight on slow hosts)
DOMAIN_CREATE_TIMEOUT = "10m"
GIB = 1024**3

#: The provider gives every domain a SPICE display unless told otherwise, and its schema knows
#: only spice or vnc; QEMU builds without SPICE (the RHEL 9 family) refuse such a domain. This
#: XSLT removes every display (and SPICE's helper devices) from the domain XML the provider
#: writes: the VMs are reached by SSH, with the serial console for a human at the hypervisor.
NO_GRAPHICS_XSLT = """<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="xml" indent="yes"/>
  <xsl:template match="@*|node()">
    <xsl:copy><xsl:apply-templates select="@*|node()"/></xsl:copy>
  </xsl:template>
  <xsl:template match="/domain/devices/graphics"/>
  <xsl:template match="/domain/devices/video"/>
  <xsl:template match="/domain/devices/audio"/>
  <xsl:template match="/domain/devices/channel[@type='spicevmc']"/>
  <xsl:template match="/domain/devices/redirdev[@type='spicevmc']"/>
</xsl:stylesheet>
"""

_HYPERVISOR_URI = re.compile(r"^qemu(\+ssh|\+tcp|\+tls)?://[^\s]*/system(\?[^\s]*)?$")


class LibvirtPlacement(Placement):
    """A VM on a libvirt hypervisor named in `hypervisors`."""

    hypervisor: str = "local"
    #: MiB; FeatureCloud's controller plus one app container need about 1 GiB
    memory: int = Field(default=2048, ge=1024, le=1048576)
    vcpus: int = Field(default=2, ge=1, le=256)
    #: GiB of the VM's root disk (a copy-on-write overlay of the cloud image)
    disk: int = Field(default=20, ge=10, le=65536)


class Hypervisor(BaseModel):
    """A libvirt host: the local one or one reached by qemu+ssh://; one provider each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    uri: str
    #: an existing storage pool on that host
    pool: str = "default"
    #: the NAT network fedstack creates there; DHCP hands out addresses from it
    network_cidr: str = "10.77.0.0/24"
    #: cloud image (URL or a path on the machine running pulumi), uploaded once per hypervisor
    image: str = UBUNTU_2404_IMAGE
    #: qemu+ssh:// only (required there): the hypervisor's SSH host key, pinned on the jump
    host_key: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_site_name(value)

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not _HYPERVISOR_URI.match(value):
            raise ValueError(
                f"{value!r} is not a libvirt system URI like qemu:///system or "
                "qemu+ssh://user@host/system"
            )
        if "+ssh://" not in value:
            return value
        user, _host, port, keyfile = ssh_uri_parts(value)
        if not user:
            raise ValueError("qemu+ssh URIs must name the user (user@host)")
        if port is not None:
            # the provider's SSH transport joins its own :22 to a given port (fixed after 0.8.1)
            raise ValueError(
                f"must not give a port (:{port}): the libvirt provider 0.5.4 cannot dial one; "
                "reach the hypervisor's sshd on port 22 by its real address"
            )
        if keyfile is None or not keyfile.startswith("/"):
            raise ValueError(
                "qemu+ssh URIs must give keyfile=/absolute/path/to/private_key (the provider "
                "reads no ~/.ssh/config, and the jump to the VMs logs in with that key)"
            )
        return value

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: str | None) -> str | None:
        return None if value is None else check_host_key(value)

    @model_validator(mode="after")
    def _ssh_needs_host_key(self) -> Hypervisor:
        remote = "+ssh://" in self.uri
        if remote and self.host_key is None:
            raise ValueError(
                "a qemu+ssh hypervisor needs host_key (`ssh-keyscan -t ed25519 HOST`): it is "
                "pinned for the jump to its VMs"
            )
        if not remote and self.host_key is not None:
            raise ValueError("host_key is only for qemu+ssh hypervisors")
        return self

    def jump(self) -> Jump | None:
        """The jump to this hypervisor's VMs (itself), or None for the local one."""
        if self.host_key is None:
            return None
        return hypervisor_jump(self.uri, self.host_key)

    @field_validator("network_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 network: {exc}") from None
        if net.prefixlen > 28:
            raise ValueError("must have room for the VMs (a /28 or larger)")
        return value


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
        jump_private_key: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(SITE_TYPE, name, None, opts)
        host_key = tls.PrivateKey(
            f"{name}-host-key", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self)
        )
        self.host_public_key = host_key.public_key_openssh.apply(lambda k: k.strip())
        seed = self._seed(name, f"fedstack-{stack}-{name}", hypervisor, host_key, login)
        domain = self._domain(name, f"fedstack-{stack}-{name}", placement, hypervisor, seed)
        self.address = domain.network_interfaces.apply(_first_address)
        self.provisioner = Provisioner(
            f"{name}-host",
            HostAccess(
                address=self.address,
                port=22,
                user=login.user,
                private_key=login.private_key,
                host_key=self.host_public_key,
                jump=hypervisor.hypervisor.jump(),
                jump_private_key=jump_private_key,
            ),
            plan,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"address": self.address, "host_public_key": self.host_public_key})

    def _seed(
        self,
        name: str,
        vm_name: str,
        hypervisor: LibvirtHypervisor,
        host_key: tls.PrivateKey,
        login: VmLogin,
    ) -> libvirt.CloudInitDisk:
        """The cloud-init seed ISO: the host key (so user-data is secret) and the login."""

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
        return libvirt.CloudInitDisk(
            f"{name}-seed",
            name=f"{vm_name}-seed.iso",
            pool=hypervisor.hypervisor.pool,
            user_data=user_data,
            meta_data=pulumi.Output.unsecret(meta_data),
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )

    def _domain(
        self,
        name: str,
        vm_name: str,
        placement: LibvirtPlacement,
        hypervisor: LibvirtHypervisor,
        seed: libvirt.CloudInitDisk,
    ) -> libvirt.Domain:
        """The VM on a copy-on-write overlay of the base image, waiting for its DHCP lease."""
        replace_first = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        root = libvirt.Volume(
            f"{name}-root",
            name=f"{vm_name}-root.qcow2",
            pool=hypervisor.hypervisor.pool,
            base_volume_id=hypervisor.base_image.id,
            size=placement.disk * GIB,
            format="qcow2",
            opts=replace_first,
        )
        return libvirt.Domain(
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
            # Ubuntu cloud images expect a serial console; it is also the only console
            consoles=[libvirt.DomainConsoleArgs(type="pty", target_port="0", target_type="serial")],
            xml=libvirt.DomainXmlArgs(xslt=NO_GRAPHICS_XSLT),
            # the lease file is the address source: the guest agent path is broken in 0.8.1
            qemu_agent=False,
            opts=pulumi.ResourceOptions.merge(
                replace_first,
                pulumi.ResourceOptions(
                    custom_timeouts=pulumi.CustomTimeouts(create=DOMAIN_CREATE_TIMEOUT)
                ),
            ),
        )


def _first_address(nics: Sequence[Any] | None) -> str:
    """The VM's first address, from its first NIC (filled by wait_for_lease)."""
    first = nics[0] if nics else None
    addresses = getattr(first, "addresses", None)
    if addresses is None and isinstance(first, Mapping):
        addresses = first.get("addresses")
    if not isinstance(addresses, list) or not addresses:
        raise ValueError("the VM reported no address: is DHCP running on its network?")
    return str(addresses[0])


class _Hypervisors(Protocol):
    def used_hypervisors(self) -> list[Hypervisor]: ...


class LibvirtStack(Protocol):
    """What this backend reads of the stack settings."""

    @property
    def vm_user(self) -> str: ...

    @property
    def spec(self) -> _Hypervisors: ...


def _jump_key(deploy: Deployment, hv: Hypervisor) -> pulumi.Output[str] | None:
    jump = hv.jump()
    return None if jump is None else deploy.jump_keys[jump.key_file]


class LibvirtBackend(Backend[LibvirtPlacement]):
    """One explicit provider, network and base image per hypervisor that carries sites."""

    name = "libvirt"
    placement = LibvirtPlacement
    summary = "{hypervisor, memory (MiB), vcpus, disk (GiB)}"

    def jumps(self, settings: LibvirtStack) -> list[tuple[str, Jump]]:
        """A remote hypervisor is the jump to its VMs, which sit on its NAT network."""
        found = []
        for hv in settings.spec.used_hypervisors():
            jump = hv.jump()
            if jump is not None:
                found.append((f"hypervisor {hv.name!r}: uri keyfile", jump))
        return found

    def declare(self, deploy: Deployment, sites: Sequence[Placed[LibvirtPlacement]]) -> list[Host]:
        settings: LibvirtStack = deploy.settings
        key = deploy.the_login()
        login = VmLogin(
            user=settings.vm_user, public_key=key.public_key, private_key=key.private_key
        )
        hosts: list[Host] = []
        for hv in settings.spec.used_hypervisors():
            provider = libvirt.Provider(
                f"libvirt-{hv.name}", uri=hv.uri, opts=pulumi.ResourceOptions(parent=deploy.parent)
            )
            on_hv = deploy.providers(provider)
            hypervisor = LibvirtHypervisor(hv.name, hv, stack=deploy.stack, opts=on_hv)
            for site in sites:
                if site.placement.hypervisor != hv.name:
                    continue
                vm = LibvirtSite(
                    site.name,
                    site.placement,
                    stack=deploy.stack,
                    hypervisor=hypervisor,
                    login=login,
                    plan=site.plan,
                    jump_private_key=_jump_key(deploy, hv),
                    opts=on_hv,
                )
                hosts.append(
                    Host(
                        name=site.name,
                        address=vm.address,
                        host_key=vm.host_public_key,
                        port=22,
                        user=settings.vm_user,
                        private_key=key.private_key,
                        jump=hv.jump(),
                    )
                )
        return hosts
