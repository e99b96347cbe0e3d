"""Building one backend alone under the SDK's mocks: a root component, the shared providers
and a login key, as the Federation would hand them over, and a plan per site."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_tls as tls

from fedinfra.backends.base import Deployment, Host, Login
from fedinfra.components.provisioner import ProvisionPlan
from tests.infra.harness import Harness, resolve

ROOT_TYPE = "test:index:Root"


def plan(
    *, cloud_init: bool = True, provision: bool = True, cleanup: bool = False
) -> ProvisionPlan:
    return ProvisionPlan(
        workdir="/srv/fedstack",
        fc_version="0.1.0",
        docker_required=True,
        readiness_timeout="15m",
        provision_timeout="30m",
        cloud_init=cloud_init,
        provision=provision,
        cleanup_stop_command="featurecloud controller stop fc-controller" if cleanup else None,
        controller_name="fc-controller" if cleanup else None,
    )


def deployment(
    settings: Any,
    *,
    stack: str = "t",
    login: bool = True,
    key_texts: Mapping[str, pulumi.Output[str]] | None = None,
    key_files: Mapping[str, str] | None = None,
    jump_keys: Mapping[str, pulumi.Output[str]] | None = None,
) -> Deployment:
    """Call inside run_program: declares the root, the providers and (if asked) the login key."""
    root = pulumi.ComponentResource(ROOT_TYPE, "root")
    here = pulumi.ResourceOptions(parent=root)
    tls_provider = tls.Provider("tls", opts=here)
    the_login = None
    if login:
        key = tls.PrivateKey(
            "login-key",
            algorithm="ED25519",
            opts=pulumi.ResourceOptions(parent=root, provider=tls_provider),
        )
        the_login = Login(public_key=key.public_key_openssh, private_key=key.private_key_openssh)
    return Deployment(
        stack=stack,
        parent=root,
        tls=tls_provider,
        command=command.Provider("command", opts=here),
        settings=settings,
        login=the_login,
        key_texts=key_texts or {},
        key_files=key_files or {},
        jump_keys=jump_keys or {},
        jump_key_files={path: path for path in jump_keys or {}},
    )


def host_facts(host: Host) -> dict[str, Any]:
    """A reported host with its outputs resolved."""
    return {
        "name": host.name,
        "address": resolve(host.address)[0],
        "host_key": resolve(host.host_key)[0],
        "port": host.port,
        "user": host.user,
        "private_key": resolve(host.private_key)[0] if host.private_key is not None else None,
        "private_key_file": host.private_key_file,
    }


def parent_type(h: Harness, name: str) -> str:
    """The type token of a resource's parent, from its registration."""
    parent = h.request(name).parent
    return str(parent.split("::")[-2].split("$")[-1])
