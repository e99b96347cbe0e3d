"""Provisioner: readiness gate, then provisioning (or only a check), on one host over SSH.

Every connection pins the host key (`host_key`), and a jump host's too: pulumi-command otherwise
accepts any key. The gate dials many times (a booting VM refuses connections for a while and
pulumi-command's default of 10 dials is used up in seconds), but a bounded number, sized to its
deadline; everything else depends on the gate. Every command has a create AND an update
deadline: pulumi-command gives an update none unless one is set, so a re-run gate would
otherwise dial forever. The script and its settings (some secret) go on stdin of `bash -s`, never
into the command text; a changed script replaces the command (triggers), so it runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from fedinfra.jumps import Jump
from fedinfra.script import (
    CHECK_SCRIPT,
    PROVISION_SCRIPT,
    RUN_STDIN,
    cleanup_command,
    load_script,
    provision_settings,
    readiness_command,
    render_stdin,
    script_sha256,
)

TYPE = "fedstack:host:Provisioner"


@dataclass(frozen=True)
class HostAccess:
    """How Pulumi reaches a host; the same facts the inventory hands the runner."""

    address: pulumi.Input[str]
    port: int
    user: str
    #: OpenSSH private key text (a secret Output)
    private_key: pulumi.Input[str]
    #: the pinned public host key, "ssh-ed25519 AAAA..."
    host_key: pulumi.Input[str]
    #: a host to go through (pulumi-command's `proxy`), and its private key text (secret)
    jump: Jump | None = None
    jump_private_key: pulumi.Input[str] | None = None
    #: what every command waits for beyond its inputs (e.g. the egress rule that lets the
    #: host reach package mirrors)
    after: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class ProvisionPlan:
    """What to do on the host once it is reachable."""

    workdir: str
    fc_version: str
    docker_required: bool
    readiness_timeout: str
    provision_timeout: str
    #: True: machines fedstack made, whose cloud-init must finish first
    cloud_init: bool
    #: False: only check that docker, python3 and featurecloud are there (BYO opt-out)
    provision: bool = True
    #: set on bring-your-own hosts: destroy stops this controller and removes the workdir
    cleanup_stop_command: str | None = None
    controller_name: str | None = None
    #: secret Output or None: a package index URL for pip, which may carry a token
    pip_index_url: pulumi.Input[str] | None = None
    #: a host-held site: fcapi installed on its host, and its password file written from
    #: `fc_password` (a secret Output) when this stack holds it
    fcapi_package: str | None = None
    password_file: str | None = None
    fc_password: pulumi.Input[str | None] | None = None


#: seconds a failed dial can take at most before the next: pulumi-command's backoff is capped
#: at 5 s, a refused connection returns at once
_DIAL_PACE = 5
#: dials of the steps after the gate, which only meet a host that was just reachable
_FEW_DIALS = 30
#: destroy's cleanup on a bring-your-own host
CLEANUP_TIMEOUT = "10m"
_UNIT = {"s": 1, "m": 60, "h": 3600}


def gate_dials(deadline: str) -> int:
    """Enough dials to keep trying until the gate's deadline, and no more."""
    seconds = int(deadline[:-1]) * _UNIT[deadline[-1]]
    return seconds // _DIAL_PACE + 10


def _connection(access: HostAccess, *, dials: int) -> remote.ConnectionArgs:
    proxy = None
    if access.jump is not None:
        if access.jump_private_key is None:
            raise ValueError(f"jump host {access.jump.address}: no private key was read")
        proxy = remote.ProxyConnectionArgs(
            host=access.jump.address,
            port=float(access.jump.port),
            user=access.jump.user,
            private_key=access.jump_private_key,
            host_key=access.jump.host_key,
            dial_error_limit=dials,
            per_dial_timeout=15,
        )
    return remote.ConnectionArgs(
        host=access.address,
        port=float(access.port),
        user=access.user,
        private_key=access.private_key,
        host_key=access.host_key,
        dial_error_limit=dials,
        per_dial_timeout=15,
        proxy=proxy,
    )


def _deadlines(
    child: pulumi.ResourceOptions, timeout: str, *, delete: str | None = None
) -> pulumi.ResourceOptions:
    """Create and update deadlines (and delete's, for the cleanup) on a command."""
    timeouts = pulumi.CustomTimeouts(create=timeout, update=timeout, delete=delete)
    return pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(custom_timeouts=timeouts))


def provision_stdin(plan: ProvisionPlan, script: str) -> pulumi.Output[str]:
    """Settings + script for `bash -s`; secret as soon as any setting is secret."""
    secrets = [plan.pip_index_url, plan.fc_password]

    def render(values: list[str | None]) -> str:
        pip_index_url, fc_password = values
        settings = provision_settings(
            workdir=plan.workdir,
            fc_version=plan.fc_version,
            docker_required=plan.docker_required,
            pip_index_url=pip_index_url,
            fcapi_package=plan.fcapi_package,
            password_file=plan.password_file,
            fc_password=fc_password,
        )
        return render_stdin(settings, script)

    if all(s is None for s in secrets):
        return pulumi.Output.from_input(render([None, None]))
    return pulumi.Output.secret(pulumi.Output.all(*secrets).apply(render))


class Provisioner(pulumi.ComponentResource):
    """Gate -> provision (or check) [-> cleanup on destroy, BYO hosts] for one host."""

    ready: remote.Command
    setup: remote.Command
    cleanup: remote.Command | None

    def __init__(
        self,
        name: str,
        access: HostAccess,
        plan: ProvisionPlan,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(access.after))

        self.ready = remote.Command(
            f"{name}-ready",
            connection=_connection(access, dials=gate_dials(plan.readiness_timeout)),
            create=readiness_command(cloud_init=plan.cloud_init),
            opts=_deadlines(child, plan.readiness_timeout),
        )
        after_ready = pulumi.ResourceOptions(parent=self, depends_on=[*access.after, self.ready])

        script = load_script(PROVISION_SCRIPT if plan.provision else CHECK_SCRIPT)
        stdin = (
            provision_stdin(plan, script) if plan.provision else pulumi.Output.from_input(script)
        )
        self.setup = remote.Command(
            f"{name}-{'provision' if plan.provision else 'check'}",
            connection=_connection(access, dials=_FEW_DIALS),
            create=RUN_STDIN,
            stdin=stdin,
            triggers=[script_sha256(script)],
            add_previous_output_in_env=False,
            logging=remote.Logging.STDOUT_AND_STDERR,
            opts=_deadlines(after_ready, plan.provision_timeout),
        )

        self.cleanup = self._cleanup(name, access, plan, after_ready)
        self.register_outputs({"ready": self.ready.stdout, "summary": self.setup.stdout})

    def _cleanup(
        self,
        name: str,
        access: HostAccess,
        plan: ProvisionPlan,
        after_ready: pulumi.ResourceOptions,
    ) -> remote.Command | None:
        """Bring-your-own hosts only: destroy stops the controller and removes the workdir.

        A separate resource, so that a re-provisioning (replacement) never runs it.
        """
        if plan.cleanup_stop_command is None or plan.controller_name is None:
            return None
        return remote.Command(
            f"{name}-cleanup",
            connection=_connection(access, dials=_FEW_DIALS),
            create="true",
            delete=cleanup_command(
                workdir=plan.workdir,
                stop_command=plan.cleanup_stop_command,
                controller_name=plan.controller_name,
            ),
            add_previous_output_in_env=False,
            opts=_deadlines(after_ready, CLEANUP_TIMEOUT, delete=CLEANUP_TIMEOUT),
        )
