"""Federation: the root component. The shared providers (tls, command) and login key, the sites
on the backends of `fedinfra.backends` (each with its own explicit providers), and the
validated inventory built from the host facts the backends report.

Every provider is explicit and handed down with `providers=[...]`; the stack files disable the
default providers as well, so no resource can end up on an implicitly configured one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_tls as tls

from fedinfra.backends import BACKENDS, Backend
from fedinfra.backends.base import Deployment, Host, Login, Placed
from fedinfra.build_inventory import (
    HostFacts,
    JumpFacts,
    build_inventory,
    controller_for,
    export_inventory,
    held_password,
    public_view,
)
from fedinfra.components.provisioner import ProvisionPlan
from fedinfra.inventory import Inventory
from fedinfra.script import FCAPI_PACKAGE
from fedinfra.settings import StackSettings
from fedinfra.spec import Site

TYPE = "fedstack:index:Federation"


@dataclass(frozen=True)
class Secrets:
    """Secret inputs, read at the edge as secret Outputs (or None when not configured)."""

    #: FeatureCloud passwords by user
    passwords: pulumi.Output[Mapping[str, str]] | None
    pip_index_url: pulumi.Output[str] | None
    #: private keys from files the sites name (bring-your-own hosts): text by site name ...
    key_texts: Mapping[str, pulumi.Output[str]]
    #: ... and the file each came from, which the inventory names for the runner
    key_files: Mapping[str, str]
    #: the jump hosts' private keys, by key file as the config names it: text and path
    jump_keys: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    jump_key_files: Mapping[str, str] = field(default_factory=dict)


class Federation(pulumi.ComponentResource):
    """All sites of one stack. Outputs: inventory (secret), sites (public summary)."""

    inventory: pulumi.Output[dict[str, object]]
    sites: pulumi.Output[list[dict[str, object]]]

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        secrets: Secrets,
        *,
        stack: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        deploy = self._deployment(settings, secrets, stack)
        spec = settings.spec
        hosts: dict[str, Host] = {}
        for backend_name, backend in BACKENDS.items():
            on = spec.sites_on(backend_name)
            if on:
                placed = [
                    Placed(s.name, s.placement, _plan(settings, secrets, s, backend)) for s in on
                ]
                hosts |= {h.name: h for h in backend.declare(deploy, placed)}
        facts = [
            _facts(site, hosts[site.name], settings, secrets.jump_key_files) for site in spec.sites
        ]
        passwords: pulumi.Input[Mapping[str, str] | None] = secrets.passwords

        def build(values: list[object]) -> dict[str, object]:
            *known, pw = values
            inventory = build_inventory(
                stack=stack,
                hosts=[h for h in known if isinstance(h, HostFacts)],
                passwords=pw if isinstance(pw, Mapping) else None,
                controller_name=settings.controller_name,
                controller_port=settings.controller_port,
            )
            return export_inventory(inventory)

        validated = pulumi.Output.all(*facts, passwords).apply(build)
        self.inventory = pulumi.Output.secret(validated)
        # the public view carries no key and no password, so it may be read without secrets
        self.sites = pulumi.Output.unsecret(
            validated.apply(lambda data: public_view(_reload(data)))
        )
        self.register_outputs({"inventory": self.inventory, "sites": self.sites})

    def _deployment(self, settings: StackSettings, secrets: Secrets, stack: str) -> Deployment:
        """The shared providers, and the login key when a backend makes machines."""
        here = pulumi.ResourceOptions(parent=self)
        tls_provider = tls.Provider("tls", opts=here)
        command_provider = command.Provider("command", opts=here)
        login = None
        if any(b.makes_machines and settings.spec.sites_on(n) for n, b in BACKENDS.items()):
            key = tls.PrivateKey(
                "login-key",
                algorithm="ED25519",
                opts=pulumi.ResourceOptions(parent=self, provider=tls_provider),
            )
            login = Login(public_key=key.public_key_openssh, private_key=key.private_key_openssh)
        return Deployment(
            stack=stack,
            parent=self,
            tls=tls_provider,
            command=command_provider,
            settings=settings,
            login=login,
            key_texts=secrets.key_texts,
            key_files=secrets.key_files,
            jump_keys=secrets.jump_keys,
            jump_key_files=secrets.jump_key_files,
        )


def _plan(
    settings: StackSettings, secrets: Secrets, site: Site, backend: Backend[Any]
) -> ProvisionPlan:
    """What to do on a site's host: machines the stack made finish cloud-init first; existing
    hosts get a cleanup on destroy (their controller stopped, the workdir removed)."""
    owned = backend.makes_machines
    workdir = settings.workdir_of(site.name)
    controller = controller_for(
        workdir, name=settings.controller_name, port=settings.controller_port
    )
    return ProvisionPlan(
        workdir=workdir,
        fc_version=settings.featurecloud_version,
        docker_required=settings.docker_required,
        readiness_timeout=settings.readiness_timeout,
        provision_timeout=settings.provision_timeout,
        cloud_init=owned,
        provision=backend.provisions(site.placement),
        cleanup_stop_command=None if owned else controller.stop_command,
        controller_name=None if owned else settings.controller_name,
        pip_index_url=secrets.pip_index_url,
        **_held(site, secrets),
    )


def _held(site: Site, secrets: Secrets) -> dict[str, Any]:
    """A host-held site's part of its plan: fcapi on the host, and its password file written
    from this stack's secret for that user only, if the stack holds it (the site's own)."""
    if site.credentials != "host":
        return {}
    passwords = secrets.passwords
    fc_password = (
        None
        if passwords is None
        else passwords.apply(lambda known: held_password("host", site.fc_user, known))
    )
    return {
        "fcapi_package": FCAPI_PACKAGE,
        "password_file": site.password_file,
        "fc_password": fc_password,
    }


def _facts(
    site: Site, host: Host, settings: StackSettings, jump_key_files: Mapping[str, str]
) -> pulumi.Output[HostFacts]:
    """A site's host facts once its address and keys are known; a jump names its key file
    (resolved) for the runner, never its text."""
    jump = host.jump
    via = (
        None
        if jump is None
        else JumpFacts(
            address=jump.address,
            port=jump.port,
            user=jump.user,
            host_key=jump.host_key,
            private_key_file=jump_key_files.get(jump.key_file, jump.key_file),
        )
    )

    def make(values: list[str | None]) -> HostFacts:
        address, host_key, private_key = values
        return HostFacts(
            name=site.name,
            fc_user=site.fc_user,
            coordinator=site.coordinator,
            address=str(address),
            port=host.port,
            user=host.user,
            host_keys=(str(host_key),),
            workdir=settings.workdir_of(site.name),
            private_key=private_key,
            private_key_file=host.private_key_file,
            jump=via,
            credentials=site.credentials,
            password_file=site.password_file,
        )

    private: pulumi.Input[str | None] = host.private_key
    return pulumi.Output.all(host.address, host.host_key, private).apply(make)


def _reload(data: dict[str, object]) -> Inventory:
    """The exported JSON back into the model, for views derived from it."""
    return Inventory.model_validate(data)
