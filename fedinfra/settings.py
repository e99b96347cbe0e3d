"""The stack's configuration, read once at the edge into typed, validated settings.

Every `fedstack:*` key is listed in CONFIG_KEYS with its default and description; Pulumi.yaml
documents the same keys with the same defaults (a test keeps the two in step). Values arrive as
the CLI hands them to the program: strings, with structured values as JSON. A wrong or unknown
key fails with one line before any resource is declared. Secret keys (FeatureCloud passwords,
a private package index) never pass through here: they are read as secret Outputs in
`fedinfra.stack`. The functions here are pure (tested without a Pulumi program); the spec's
placement models come from the backend modules.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fedinfra.backends import BACKENDS
from fedinfra.inventory import ControllerSpec
from fedinfra.problems import Problem, one_line
from fedinfra.spec import FederationSpec, SpecError, check_workdir, parse_spec

PROJECT = "fedstack"

_DURATION = re.compile(r"^[1-9][0-9]*(s|m|h)$")
_AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")


@dataclass(frozen=True)
class Key:
    """One config key: its default (None = no default) and what it is for."""

    default: Any
    description: str
    #: the type Pulumi.yaml declares: string | integer | boolean | array | object (the last two
    #: arrive as JSON)
    kind: str = "string"
    secret: bool = False


_CONTROLLER_NAME: str = ControllerSpec.model_fields["name"].default
_CONTROLLER_PORT: int = ControllerSpec.model_fields["port"].default

CONFIG_KEYS: dict[str, Key] = {
    "sites": Key(
        None,
        "The federation: a list of sites, each {name, fc_user, coordinator, and one of "
        + ", ".join(f"{name}: {b.summary}" for name, b in BACKENDS.items())
        + "}; a participant may add credentials: host and password_file: /abs/path (its "
        "password stays in that 0600 file on its host). Required.",
        kind="array",
    ),
    "hypervisors": Key(
        [{"name": "local", "uri": "qemu:///system"}],
        "libvirt hosts: a list of {name, uri (qemu:///system or qemu+ssh://user@host/system), "
        "pool (default 'default'), network_cidr (default 10.77.0.0/24), image (default Ubuntu "
        "24.04 cloud image URL), host_key (qemu+ssh only)}. One explicit provider per hypervisor.",
        kind="array",
    ),
    "workdir": Key(
        "/srv/fedstack",
        "fedstack's working directory on every host (a site may override it); destroy removes "
        "it on bring-your-own hosts.",
    ),
    "featurecloudVersion": Key(
        "0.1.0", "Pinned version of the FeatureCloud CLI (PyPI featurecloud)."
    ),
    "vmUser": Key(
        "fedstack", "Login user cloud-init creates on libvirt VMs (a passwordless sudoer)."
    ),
    "awsUser": Key("ubuntu", "Login user of the Ubuntu AMI on AWS instances."),
    "dockerRequired": Key(
        True,
        "Fail provisioning when the Docker engine cannot run on a host (false: warn and go on).",
        kind="boolean",
    ),
    "readinessTimeout": Key("15m", "Deadline for a host to accept SSH and finish cloud-init."),
    "provisionTimeout": Key("30m", "Deadline for provisioning one host."),
    "awsRegion": Key(
        "eu-central-1", "AWS region of the explicit aws provider (aws:region is not read)."
    ),
    "awsAmi": Key(
        "",
        "AMI of the AWS instances; empty = the newest Ubuntu 24.04 AMI at the time each instance "
        "is made, kept for that instance's life. Set an AMI id to move every instance to it on "
        "purpose (the next `pulumi up` replaces them).",
    ),
    "sshAllowedCidr": Key(
        "",
        "The only source CIDR allowed to reach AWS instances by SSH, e.g. 198.51.100.7/32. "
        "Required when any site runs on AWS; there is deliberately no 0.0.0.0/0 default.",
    ),
    "controllerName": Key(
        _CONTROLLER_NAME, "Name of fedstack's FeatureCloud controller on every host."
    ),
    "controllerPort": Key(
        _CONTROLLER_PORT, "Port of the controller on each host's localhost.", kind="integer"
    ),
    "workflow": Key(
        "",
        "Workflow file (TOML) `python -m runner --stack` uses when no --workflow is given, "
        "relative to the project folder. Read by the runner only.",
    ),
    "fcPasswords": Key(
        {},
        "Secret: FeatureCloud passwords by user (e-mail); set with "
        "`pulumi config set --secret --path 'fcPasswords[\"a@b.org\"]'`. Exported only as secrets.",
        kind="object",
        secret=True,
    ),
    "pipIndexUrl": Key(
        "",
        "Secret, optional: a package index for pip on the hosts (may hold a token); sent on stdin.",
        secret=True,
    ),
}


class StackSettings(BaseModel):
    """Everything the program needs from the stack config except the secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: FederationSpec
    workdir: str
    featurecloud_version: str = Field(pattern=r"^[0-9A-Za-z.+-]+$")
    vm_user: str = Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    aws_user: str = Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    docker_required: bool
    readiness_timeout: str
    provision_timeout: str
    aws_region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
    ssh_allowed_cidr: str | None
    aws_ami: str | None = None
    controller_name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
    controller_port: int = Field(ge=1, le=65535)
    #: the runner's default workflow file; the program itself does not use it
    workflow: str = ""

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str) -> str:
        return check_workdir(value)

    @field_validator("readiness_timeout", "provision_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"{value!r} is not a duration like '15m', '900s' or '1h'")
        return value

    @field_validator("ssh_allowed_cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if not value:
            return None  # "" is Pulumi.yaml's way of saying "unset"
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR: {exc}") from None
        if net.version == 6:
            # the instances have public IPv4 addresses only: SSH to them comes from IPv4
            raise ValueError(
                f"{value!r} is IPv6, but the instances are reached on their public IPv4 "
                "address; give your IPv4 address, e.g. $(curl -4 -s https://checkip.amazonaws.com)/32"
            )
        if net.prefixlen == 0:
            raise ValueError("must not admit the whole internet (0.0.0.0/0); give your own /32")
        return value

    @field_validator("aws_ami")
    @classmethod
    def _ami(cls, value: str | None) -> str | None:
        if not value:
            return None  # "" = unset: the newest Ubuntu 24.04 AMI when an instance is made
        if not _AMI.match(value):
            raise ValueError(f"{value!r} is not an AMI id like 'ami-0123456789abcdef0'")
        return value

    def workdir_of(self, site_name: str) -> str:
        site = next(s for s in self.spec.sites if s.name == site_name)
        return site.workdir or self.workdir


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _config_key(problem: Problem) -> str:
    """A settings field as the stack file names it: `config fedstack:sshAllowedCidr`."""
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), str(problem.loc[0]))
    return f"config {PROJECT}:{camel}"


def _value(key: str, raw: str | None) -> Any:
    spec = CONFIG_KEYS[key]
    if raw is None:
        return spec.default
    if spec.kind in ("array", "object"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SpecError(f"config {PROJECT}:{key}: not a structured value: {exc}") from None
    if spec.kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise SpecError(f"config {PROJECT}:{key}: must be true or false, got {raw!r}")
        return raw.lower() == "true"
    if spec.kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise SpecError(
                f"config {PROJECT}:{key}: must be a whole number, got {raw!r}"
            ) from None
    return raw


def load_settings(values: Mapping[str, str]) -> StackSettings:
    """Settings from the flat config the CLI passes (`fedstack:key` -> string).

    Raises SpecError with one line for an unknown key, a missing `sites`, a wrong spec, a wrong
    value, or AWS sites without `sshAllowedCidr`.
    """
    prefix = PROJECT + ":"
    ours = {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}
    unknown = sorted(set(ours) - set(CONFIG_KEYS))
    if unknown:
        raise SpecError(
            f"config {prefix}{unknown[0]}: not a fedstack setting (known: {', '.join(CONFIG_KEYS)})"
        )
    if "sites" not in ours:
        raise SpecError(f"config {prefix}sites: is required (the list of the federation's sites)")
    spec_raw = {"sites": _value("sites", ours["sites"])}
    spec_raw["hypervisors"] = _value("hypervisors", ours.get("hypervisors"))
    spec = parse_spec(spec_raw)
    plain = {
        _snake(k): _value(k, ours.get(k))
        for k, key in CONFIG_KEYS.items()
        if key.kind not in ("array", "object") and not key.secret
    }
    try:
        settings = StackSettings(spec=spec, **plain)
    except ValidationError as exc:
        raise SpecError(one_line(exc, _config_key, count_more=False)) from None
    if spec.sites_on("aws") and settings.ssh_allowed_cidr is None:
        raise SpecError(
            f"config {prefix}sshAllowedCidr: is required for AWS sites: the one CIDR allowed to "
            f"reach them by SSH, e.g. `pulumi config set sshAllowedCidr $(curl -s "
            f"https://checkip.amazonaws.com)/32`"
        )
    return settings
