"""The backend contract: where a site's host comes from.

A backend is one module in this folder holding three things, so that a new kind of machine (a
Proxmox VM, a GCP instance) is that module, its test and one line in the registry:

- its placement model: the block a site gives under the backend's name in `fedstack:sites`
  (`libvirt: {...}`), validated by pydantic with the rest of the spec;
- its components: what `declare` builds under the Federation for the sites placed on it;
- the host facts it reports for each of those sites (`Host`): address, port, login, pinned host
  key, and the private key (text the stack generated, or a file the user named), from which the
  Federation builds the inventory.

The Federation hands every backend the same `Deployment` (the stack, the shared providers, the
stack's login key) and a provisioning plan per site, so no backend knows another.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import pulumi
import pulumi_command as command
import pulumi_tls as tls
from pydantic import BaseModel, ConfigDict

from fedinfra.components.provisioner import ProvisionPlan
from fedinfra.jumps import Jump


class Placement(BaseModel):
    """A site's block for one backend; unknown fields are refused, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Placement)


@dataclass(frozen=True)
class Login:
    """The stack's generated login key, shared by every machine the stack makes."""

    public_key: pulumi.Output[str]
    private_key: pulumi.Output[str]


@dataclass(frozen=True)
class Deployment:
    """What the Federation hands every backend."""

    stack: str
    #: the Federation: every backend's resources go under it
    parent: pulumi.Resource
    tls: tls.Provider
    command: command.Provider
    #: fedinfra.settings.StackSettings, which this module cannot import (settings -> spec ->
    #: the registry -> here): each backend names what it reads as a Protocol of its own
    settings: Any
    #: set when a backend that makes machines has sites (`Backend.makes_machines`)
    login: Login | None
    #: private keys read from files the stack config names, by site: text (secret) and path
    key_texts: Mapping[str, pulumi.Output[str]]
    key_files: Mapping[str, str]
    #: private keys of the jump hosts (`Backend.jumps`), by `Jump.key_file` as the config
    #: writes it: text (secret) and the resolved path the inventory names
    jump_keys: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    jump_key_files: Mapping[str, str] = field(default_factory=dict)

    def providers(self, *own: pulumi.ProviderResource) -> pulumi.ResourceOptions:
        """Options for a backend's top components: under the Federation, on explicit providers."""
        return pulumi.ResourceOptions(parent=self.parent, providers=[*own, self.tls, self.command])

    def the_login(self) -> Login:
        """The login key; the Federation makes it whenever a machine-making backend has sites."""
        if self.login is None:
            raise RuntimeError("no login key: Backend.makes_machines is False for this backend")
        return self.login


@dataclass(frozen=True)
class Placed(Generic[P]):
    """One site handed to its backend."""

    name: str
    placement: P
    plan: ProvisionPlan


@dataclass(frozen=True)
class Host:
    """The host facts a backend reports for one site; the inventory is built from these."""

    name: str
    address: pulumi.Output[str]
    host_key: pulumi.Output[str]
    port: int
    user: str
    #: the private key text (machines the stack made) or a file on the runner's machine
    private_key: pulumi.Output[str] | None = None
    private_key_file: str | None = None
    #: the host to tunnel through to reach this one (one hop), or None: dialled directly
    jump: Jump | None = None


class Backend(ABC, Generic[P]):
    """One kind of host. Subclasses set the class attributes and implement `declare`."""

    #: the site's key in the stack file (`libvirt:`), and the backend's name everywhere
    name: ClassVar[str]
    placement: ClassVar[type[Placement]]
    #: the placement's fields as the `sites` key's description lists them
    summary: ClassVar[str]
    #: True: the stack makes the machines (a login key, cloud-init first, nothing to clean up);
    #: False: existing hosts, whose fedstack controller and workdir destroy removes
    makes_machines: ClassVar[bool] = True

    def check(self, placed: Sequence[tuple[str, P]]) -> None:
        """Cross-site rules on this backend's placements (site name, placement); raise
        ValueError with the line to show. Single-site rules belong on the placement model."""

    def provisions(self, placement: P) -> bool:
        """False: the host may not be changed, only checked."""
        return True

    def key_file(self, placement: P) -> str | None:
        """A private key file the site's placement names; `fedinfra.stack` reads it at the
        edge (a missing file is one line) into `Deployment.key_texts` and `key_files`."""
        return None

    def jumps(self, settings: Any) -> list[tuple[str, Jump]]:
        """The jump hosts this backend's sites go through, each with where the config names
        it (`hypervisor 'hv1': uri keyfile`), so `fedinfra.stack` reads their key files at the
        edge into `Deployment.jump_keys` and `jump_key_files`."""
        return []

    @abstractmethod
    def declare(self, deploy: Deployment, sites: Sequence[Placed[P]]) -> list[Host]:
        """Build this backend's components for its sites (at least one), in their order."""
