"""The federation spec: which sites exist, who they are on FeatureCloud, and where they run.

One spec for every stack (sim, cloud, mixed): a site runs on a libvirt hypervisor, on AWS, or
on an existing host reached over SSH. Pydantic validates it at the edge, before any resource is
declared, and `SpecError` turns pydantic's report into ONE line naming the site and the field
(`site 'bob': libvirt.memory: must be >= 1024`), because that line is what `pulumi up` shows.
Pure: no Pulumi here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fedinfra.inventory import check_site_name

#: Ubuntu 24.04 LTS (noble) cloud image; libvirt uploads it once per hypervisor
UBUNTU_2404_IMAGE = "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HYPERVISOR_URI = re.compile(r"^qemu(\+ssh|\+tcp|\+tls)?://[^\s]*/system(\?[^\s]*)?$")
_HOST_KEY = re.compile(r"^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$")
_AWS_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class SpecError(ValueError):
    """A wrong federation spec or stack config, as one line for the person running `pulumi up`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LibvirtPlacement(_Strict):
    """A VM on a libvirt hypervisor named in `hypervisors`."""

    hypervisor: str = "local"
    #: MiB; FeatureCloud's controller plus one app container need about 1 GiB
    memory: int = Field(default=2048, ge=1024, le=1048576)
    vcpus: int = Field(default=2, ge=1, le=256)
    #: GiB of the VM's root disk (a copy-on-write overlay of the cloud image)
    disk: int = Field(default=20, ge=10, le=65536)


class AwsPlacement(_Strict):
    """An EC2 instance."""

    instance_type: str = "t3.medium"
    #: subnet id; None = the default VPC's default subnet in the region
    subnet: str | None = None
    #: GiB of the root volume
    disk: int = Field(default=30, ge=10, le=16384)

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        if not _INSTANCE_TYPE.match(value):
            raise ValueError(f"{value!r} is not an EC2 instance type like 't3.medium'")
        return value

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        if value is not None and not _AWS_SUBNET.match(value):
            raise ValueError(f"{value!r} is not a subnet id like 'subnet-0123abcd'")
        return value


class SshPlacement(_Strict):
    """An existing host ("bring your own"), reached over SSH with a pinned host key."""

    address: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    user: str
    #: the private key fedstack logs in with, a file on the machine running pulumi and the runner
    key_file: str = Field(min_length=1)
    #: the host's public key as in known_hosts without the host name: "ssh-ed25519 AAAA..."
    host_key: str
    #: False: the administrator forbids changes; fedstack only checks the host
    provision: bool = True

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: str) -> str:
        if not _HOST_KEY.match(value.strip()):
            raise ValueError("must be an OpenSSH public key like 'ssh-ed25519 AAAA...'")
        return value.strip()

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not _UNIX_USER.match(value):
            raise ValueError(f"{value!r} is not a Unix user name")
        return value


class Site(_Strict):
    """One participant of the federation."""

    name: str
    #: the site's FeatureCloud account (an e-mail address)
    fc_user: str
    coordinator: bool = False
    libvirt: LibvirtPlacement | None = None
    aws: AwsPlacement | None = None
    ssh: SshPlacement | None = None
    #: fedstack's working directory on the host; None = the stack's `workdir`
    workdir: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_site_name(value)

    @field_validator("fc_user")
    @classmethod
    def _fc_user(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an e-mail address (a FeatureCloud account)")
        return value

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str | None) -> str | None:
        if value is not None:
            check_workdir(value)
        return value

    @model_validator(mode="after")
    def _one_placement(self) -> Site:
        given = [k for k in ("libvirt", "aws", "ssh") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of libvirt, aws, ssh"
                + (f" (found {', '.join(given)})" if given else "")
            )
        return self

    @property
    def backend(self) -> str:
        """'libvirt', 'aws' or 'ssh'."""
        return "libvirt" if self.libvirt else "aws" if self.aws else "ssh"


class Hypervisor(_Strict):
    """A libvirt host: the local one or one reached by qemu+ssh://; one provider each."""

    name: str
    uri: str
    #: an existing storage pool on that host
    pool: str = "default"
    #: the NAT network fedstack creates there; DHCP hands out addresses from it
    network_cidr: str = "10.77.0.0/24"
    #: cloud image (URL or a path on the machine running pulumi), uploaded once per hypervisor
    image: str = UBUNTU_2404_IMAGE

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
        if "+ssh://" in value and "@" not in value.split("//", 1)[1].split("/", 1)[0]:
            raise ValueError("qemu+ssh URIs must name the user (user@host)")
        return value

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


def check_workdir(value: str) -> str:
    """A dedicated absolute directory: cleanup removes it, so never `/` or a top-level dir."""
    if not value.startswith("/") or value.rstrip("/").count("/") < 2 or "\n" in value:
        raise ValueError(f"{value!r} must be an absolute path at least two levels deep")
    return value


class FederationSpec(_Strict):
    sites: list[Site] = Field(min_length=1)
    hypervisors: list[Hypervisor] = Field(
        default_factory=lambda: [Hypervisor(name="local", uri="qemu:///system")]
    )

    @model_validator(mode="after")
    def _consistent(self) -> FederationSpec:
        for kind, names in (
            ("site", [s.name for s in self.sites]),
            ("hypervisor", [h.name for h in self.hypervisors]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind} names must be unique: {', '.join(dupes)} repeated")
        coordinators = [s.name for s in self.sites if s.coordinator]
        if len(coordinators) != 1:
            raise ValueError(
                f"exactly one site must have coordinator: true, found {len(coordinators)}"
                + (f" ({', '.join(coordinators)})" if coordinators else "")
            )
        aws_subnets = {s.aws.subnet is None for s in self.sites if s.aws}
        if len(aws_subnets) > 1:
            raise ValueError(
                "aws sites share one security group, so either all give aws.subnet (in one VPC) "
                "or none does (the default VPC)"
            )
        known = {h.name for h in self.hypervisors}
        for site in self.sites:
            if site.libvirt and site.libvirt.hypervisor not in known:
                raise ValueError(
                    f"site {site.name!r}: libvirt.hypervisor: {site.libvirt.hypervisor!r} is not "
                    f"in hypervisors ({', '.join(sorted(known))})"
                )
        return self

    def used_hypervisors(self) -> list[Hypervisor]:
        """Hypervisors that carry at least one site, in spec order (one provider each)."""
        used = {s.libvirt.hypervisor for s in self.sites if s.libvirt}
        return [h for h in self.hypervisors if h.name in used]

    def sites_on(self, backend: str) -> list[Site]:
        return [s for s in self.sites if s.backend == backend]


def _describe(error: Mapping[str, Any]) -> str:
    """Pydantic's message for one error, phrased for a stack file."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind in ("string_type",):
        return "must be a string"
    if kind in ("too_short",) and ctx.get("min_length") is not None:
        return (
            f"must have at least {ctx['min_length']} entr{'y' if ctx['min_length'] == 1 else 'ies'}"
        )
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping of fields"
    if kind == "list_type":
        return "must be a list"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _where(loc: Sequence[int | str], raw: Mapping[str, Any]) -> tuple[str, str]:
    """(who, field path) for an error location, naming sites and hypervisors by their names."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] in ("sites", "hypervisors") and isinstance(parts[1], int):
        items = raw.get(str(parts[0]))
        name: object = None
        if isinstance(items, list) and parts[1] < len(items) and isinstance(items[parts[1]], dict):
            name = items[parts[1]].get("name")
        kind = "site" if parts[0] == "sites" else "hypervisor"
        who = f"{kind} {name!r}" if isinstance(name, str) else f"{kind} #{parts[1] + 1}"
        return who, ".".join(str(p) for p in parts[2:])
    return "federation", ".".join(str(p) for p in parts)


def one_line(exc: ValidationError, raw: Mapping[str, Any]) -> str:
    """The first error of a pydantic report as one line; how many more there are, if any."""
    errors = exc.errors()
    first = errors[0]
    who, field = _where(first["loc"], raw)
    what = _describe(first)
    if field:
        line = f"{who}: {field}: {what}"
    elif who == "federation" and what.startswith("site '"):
        line = what  # a cross-check that already names its site and field
    else:
        line = f"{who}: {what}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return line


def parse_spec(raw: Mapping[str, Any]) -> FederationSpec:
    """Validate {sites, hypervisors}; a wrong spec raises SpecError with one line."""
    try:
        return FederationSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(one_line(exc, raw)) from None
