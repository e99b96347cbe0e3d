"""Federation: the root component. One explicit provider per hypervisor / AWS region / tls /
command, the sites on their backends, and the validated inventory.

Every provider is explicit and handed down with `providers=[...]`; the stack files disable the
default providers as well, so no resource can end up on an implicitly configured one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_libvirt as libvirt
import pulumi_tls as tls

from fedinfra.build_inventory import (
    HostFacts,
    build_inventory,
    controller_for,
    export_inventory,
    public_view,
)
from fedinfra.components.aws_site import AwsEnvironment, AwsSite
from fedinfra.components.byo_site import ByoSite
from fedinfra.components.libvirt_site import LibvirtHypervisor, LibvirtSite, VmLogin
from fedinfra.components.provisioner import ProvisionPlan
from fedinfra.inventory import Inventory
from fedinfra.settings import StackSettings
from fedinfra.spec import Site

TYPE = "fedstack:index:Federation"


@dataclass(frozen=True)
class Secrets:
    """Secret inputs, read at the edge as secret Outputs (or None when not configured)."""

    #: FeatureCloud passwords by user
    passwords: pulumi.Output[Mapping[str, str]] | None
    pip_index_url: pulumi.Output[str] | None
    #: bring-your-own sites: private key text by site name (secret Outputs) ...
    byo_private_keys: Mapping[str, pulumi.Output[str]]
    #: ... and the key file each came from, which the inventory names for the runner
    byo_key_files: Mapping[str, str]


@dataclass(frozen=True)
class _SiteOut:
    site: Site
    address: pulumi.Output[str]
    host_key: pulumi.Output[str]
    port: int
    user: str
    workdir: str


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
        spec = settings.spec
        here = pulumi.ResourceOptions(parent=self)
        tls_provider = tls.Provider("tls", opts=here)
        command_provider = command.Provider("command", opts=here)

        def plan(site: Site, *, cloud_init: bool) -> ProvisionPlan:
            byo = site.ssh is not None
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
                cloud_init=cloud_init,
                provision=site.ssh.provision if site.ssh else True,
                cleanup_stop_command=controller.stop_command if byo else None,
                controller_name=settings.controller_name if byo else None,
                pip_index_url=secrets.pip_index_url,
            )

        outs: list[_SiteOut] = []
        login_key: tls.PrivateKey | None = None
        if spec.sites_on("libvirt") or spec.sites_on("aws"):
            login_key = tls.PrivateKey(
                "login-key",
                algorithm="ED25519",
                opts=pulumi.ResourceOptions(parent=self, provider=tls_provider),
            )

        # libvirt: one provider, network and base image per hypervisor that carries sites
        if login_key is not None and spec.sites_on("libvirt"):
            login = VmLogin(
                user=settings.vm_user,
                public_key=login_key.public_key_openssh,
                private_key=login_key.private_key_openssh,
            )
            for hv in spec.used_hypervisors():
                provider = libvirt.Provider(f"libvirt-{hv.name}", uri=hv.uri, opts=here)
                on_hv = pulumi.ResourceOptions(
                    parent=self, providers=[provider, tls_provider, command_provider]
                )
                hypervisor = LibvirtHypervisor(hv.name, hv, stack=stack, opts=on_hv)
                for site in spec.sites_on("libvirt"):
                    if site.libvirt is None or site.libvirt.hypervisor != hv.name:
                        continue
                    vm = LibvirtSite(
                        site.name,
                        site.libvirt,
                        stack=stack,
                        hypervisor=hypervisor,
                        login=login,
                        plan=plan(site, cloud_init=True),
                        opts=on_hv,
                    )
                    outs.append(
                        _SiteOut(
                            site,
                            vm.address,
                            vm.host_public_key,
                            22,
                            settings.vm_user,
                            settings.workdir_of(site.name),
                        )
                    )

        # AWS: one provider (explicit region) and one environment for every instance
        aws_sites = spec.sites_on("aws")
        if login_key is not None and aws_sites:
            assert settings.ssh_allowed_cidr is not None  # load_settings enforces it
            aws_provider = aws.Provider("aws", region=settings.aws_region, opts=here)
            in_aws = pulumi.ResourceOptions(
                parent=self, providers=[aws_provider, tls_provider, command_provider]
            )
            environment = AwsEnvironment(
                "aws-env",
                stack=stack,
                provider=aws_provider,
                login_public_key=login_key.public_key_openssh,
                ssh_allowed_cidr=settings.ssh_allowed_cidr,
                subnet=aws_sites[0].aws.subnet if aws_sites[0].aws else None,
                opts=in_aws,
            )
            for site in aws_sites:
                assert site.aws is not None
                instance = AwsSite(
                    site.name,
                    site.aws,
                    stack=stack,
                    environment=environment,
                    login_user=settings.aws_user,
                    login_private_key=login_key.private_key_openssh,
                    plan=plan(site, cloud_init=True),
                    opts=in_aws,
                )
                outs.append(
                    _SiteOut(
                        site,
                        instance.address,
                        instance.host_public_key,
                        22,
                        settings.aws_user,
                        settings.workdir_of(site.name),
                    )
                )

        # bring-your-own hosts: only the command provider
        for site in spec.sites_on("ssh"):
            assert site.ssh is not None
            host = ByoSite(
                site.name,
                site.ssh,
                private_key=secrets.byo_private_keys[site.name],
                plan=plan(site, cloud_init=False),
                opts=pulumi.ResourceOptions(parent=self, providers=[command_provider]),
            )
            outs.append(
                _SiteOut(
                    site,
                    host.address,
                    host.host_public_key,
                    site.ssh.port,
                    site.ssh.user,
                    settings.workdir_of(site.name),
                )
            )

        order = {s.name: i for i, s in enumerate(spec.sites)}
        outs.sort(key=lambda o: order[o.site.name])
        login_private = login_key.private_key_openssh if login_key is not None else None
        facts = [self._facts(o, login_private, secrets.byo_key_files) for o in outs]
        passwords: pulumi.Input[Mapping[str, str] | None] = secrets.passwords

        def build(values: list[object]) -> dict[str, object]:
            *hosts, pw = values
            inventory = build_inventory(
                stack=stack,
                hosts=[h for h in hosts if isinstance(h, HostFacts)],
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

    @staticmethod
    def _facts(
        out: _SiteOut,
        login_private_key: pulumi.Output[str] | None,
        byo_key_files: Mapping[str, str],
    ) -> pulumi.Output[HostFacts]:
        site = out.site

        def make(values: list[str | None]) -> HostFacts:
            address, host_key, private_key = values
            return HostFacts(
                name=site.name,
                fc_user=site.fc_user,
                coordinator=site.coordinator,
                address=str(address),
                port=out.port,
                user=out.user,
                host_keys=(str(host_key),),
                workdir=out.workdir,
                private_key=None if site.ssh else private_key,
                private_key_file=byo_key_files.get(site.name) if site.ssh else None,
            )

        private: pulumi.Input[str | None] = None if site.ssh else login_private_key
        return pulumi.Output.all(out.address, out.host_key, private).apply(make)


def _reload(data: dict[str, object]) -> Inventory:
    """The exported JSON back into the model, for views derived from it."""
    return Inventory.model_validate(data)
