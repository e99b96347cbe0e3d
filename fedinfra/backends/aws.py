"""AWS: EC2 instances (`aws:` sites) in the region of `fedstack:awsRegion`.

One AwsEnvironment (AMI, key pair, SSH-only security group) on one explicit provider, and one
AwsSite per instance (host key, instance, provisioner).

The AMI is `fedstack:awsAmi` when set (changing it replaces the instances, on purpose), else the
newest Ubuntu 24.04 AMI, looked up at every `up` but ignored on existing instances
(`ignore_changes`): the provider replaces an instance whose `ami` changes, so each new image
from Canonical would otherwise replace every instance. The group's description (which the
provider cannot change in place) names no CIDR, so a new `sshAllowedCidr` changes only the rule.
The provider removes a new group's default outbound rule; the instances and their provisioning
wait for fedstack's own egress rule, or they would boot without package mirrors.

SSH is admitted from one CIDR the user must set (no 0.0.0.0/0 default). Rules are separate
`vpc.SecurityGroup*Rule` resources, as the provider recommends over inline rules. A changed
user-data replaces the instance: cloud-init would not re-run it on a stop/start.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls
from pydantic import Field, field_validator

from fedinfra.backends.base import Backend, Deployment, Host, Placed, Placement
from fedinfra.cloudinit import render_user_data
from fedinfra.components.provisioner import HostAccess, Provisioner, ProvisionPlan
from fedinfra.jumps import Jump, JumpPlacement

ENVIRONMENT_TYPE = "fedstack:aws:Environment"
SITE_TYPE = "fedstack:aws:Site"

#: Canonical's account, the publisher of the official Ubuntu AMIs
CANONICAL = "099720109477"
UBUNTU_2404_AMI_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"

_AWS_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")


class AwsPlacement(Placement):
    """An EC2 instance."""

    instance_type: str = "t3.medium"
    #: subnet id; None = the default VPC's default subnet in the region
    subnet: str | None = None
    #: GiB of the root volume
    disk: int = Field(default=30, ge=10, le=16384)
    #: a bastion in front of a private subnet: the instance gets no public address and is
    #: reached through it (provisioning and the runner); None = its public address, directly
    jump: JumpPlacement | None = None

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


class AwsEnvironment(pulumi.ComponentResource):
    """Shared by every AWS site: the Ubuntu 24.04 AMI, the key pair, the security group.

    Pass `providers=[aws.Provider(...)]` in opts (children inherit it); the invokes name the
    provider explicitly, since they are not children.
    """

    ami_id: pulumi.Output[str]
    #: True: the AMI is the stack's `awsAmi`, to be followed; False: kept per instance
    ami_pinned: bool
    key_pair: aws.ec2.KeyPair
    security_group: aws.ec2.SecurityGroup
    egress: aws.vpc.SecurityGroupEgressRule

    def __init__(
        self,
        name: str,
        *,
        stack: str,
        provider: aws.Provider,
        login_public_key: pulumi.Input[str],
        ssh_allowed_cidr: str,
        subnet: str | None,
        ami: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(ENVIRONMENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(provider=provider, parent=self)
        tags = {"fedstack:stack": stack}

        self.ami_pinned = ami is not None
        self.ami_id = pulumi.Output.from_input(ami) if ami is not None else _newest_ubuntu(invoke)
        # the group must live in the VPC of the sites' subnet (or the default VPC)
        if subnet is not None:
            vpc_id = aws.ec2.get_subnet_output(id=subnet, opts=invoke).vpc_id
        else:
            vpc_id = aws.ec2.get_vpc_output(default=True, opts=invoke).id

        self.key_pair = aws.ec2.KeyPair(
            f"{name}-login",
            key_name_prefix=f"fedstack-{stack}-",
            public_key=login_public_key,
            tags=tags,
            opts=child,
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-ssh",
            # fixed text: the provider replaces a group whose description changes
            description=f"fedstack {stack}: SSH from the stack's sshAllowedCidr only",
            vpc_id=vpc_id,
            tags=tags,
            opts=child,
        )
        self.egress = self._rules(name, ssh_allowed_cidr)
        self.register_outputs({"ami_id": self.ami_id, "security_group": self.security_group.id})

    def _rules(self, name: str, ssh_allowed_cidr: str) -> aws.vpc.SecurityGroupEgressRule:
        """SSH in from the one CIDR; everything out (packages, images, featurecloud.ai)."""
        in_sg = pulumi.ResourceOptions(parent=self.security_group)
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-ssh-in",
            security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=22,
            to_port=22,
            cidr_ipv4=ssh_allowed_cidr,
            description="SSH for pulumi and the fedstack runner",
            opts=in_sg,
        )
        return aws.vpc.SecurityGroupEgressRule(
            f"{name}-all-out",
            security_group_id=self.security_group.id,
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            description="outbound: packages, container images, featurecloud.ai",
            opts=in_sg,
        )


def _newest_ubuntu(invoke: pulumi.InvokeOutputOptions) -> pulumi.Output[str]:
    """The newest Ubuntu 24.04 AMI from Canonical in the provider's region."""
    return aws.ec2.get_ami_output(
        most_recent=True,
        owners=[CANONICAL],
        filters=[
            aws.ec2.GetAmiFilterArgs(name="name", values=[UBUNTU_2404_AMI_NAME]),
            aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
        ],
        opts=invoke,
    ).id


class AwsSite(pulumi.ComponentResource):
    """One EC2 instance for one site, provisioned. Outputs: address, host_public_key."""

    address: pulumi.Output[str]
    host_public_key: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        placement: AwsPlacement,
        *,
        stack: str,
        environment: AwsEnvironment,
        login_user: str,
        login_private_key: pulumi.Input[str],
        plan: ProvisionPlan,
        jump_private_key: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(SITE_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        host_key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519", opts=child)
        self.host_public_key = host_key.public_key_openssh.apply(lambda k: k.strip())
        instance = self._instance(name, placement, stack, environment, host_key)
        jump = placement.jump.jump() if placement.jump is not None else None
        self.address = instance.public_ip if jump is None else instance.private_ip
        self.provisioner = Provisioner(
            f"{name}-host",
            HostAccess(
                address=self.address,
                port=22,
                user=login_user,
                private_key=login_private_key,
                host_key=self.host_public_key,
                jump=jump,
                jump_private_key=jump_private_key,
                after=(environment.egress,),
            ),
            plan,
            opts=child,
        )
        self.register_outputs({"address": self.address, "host_public_key": self.host_public_key})

    def _instance(
        self,
        name: str,
        placement: AwsPlacement,
        stack: str,
        environment: AwsEnvironment,
        host_key: tls.PrivateKey,
    ) -> aws.ec2.Instance:
        """The instance, whose user-data installs its host key (so user-data is secret)."""

        def render(keys: list[str]) -> str:
            return render_user_data(
                hostname=name, host_private_key=keys[0], host_public_key=keys[1]
            )

        rendered: pulumi.Output[str] = pulumi.Output.all(
            host_key.private_key_openssh, host_key.public_key_openssh
        ).apply(render)
        user_data: pulumi.Output[str] = pulumi.Output.secret(rendered)
        return aws.ec2.Instance(
            f"{name}-vm",
            ami=environment.ami_id,
            instance_type=placement.instance_type,
            subnet_id=placement.subnet,
            vpc_security_group_ids=[environment.security_group.id],
            key_name=environment.key_pair.key_name,
            associate_public_ip_address=placement.jump is None,
            user_data=user_data,
            user_data_replace_on_change=True,
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=placement.disk, volume_type="gp3", encrypted=True
            ),
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(http_tokens="required"),
            tags={"Name": f"fedstack-{stack}-{name}", "fedstack:stack": stack},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[environment.egress],
                ignore_changes=[] if environment.ami_pinned else ["ami"],
            ),
        )


def _jump_key(deploy: Deployment, placement: AwsPlacement) -> pulumi.Output[str] | None:
    return None if placement.jump is None else deploy.jump_keys[placement.jump.key_file]


class AwsStack(Protocol):
    """What this backend reads of the stack settings."""

    @property
    def aws_user(self) -> str: ...

    @property
    def aws_region(self) -> str: ...

    @property
    def ssh_allowed_cidr(self) -> str | None: ...

    @property
    def aws_ami(self) -> str | None: ...

    @property
    def spec(self) -> _AwsSites: ...


class _AwsSites(Protocol):
    def sites_on(self, backend: str) -> Sequence[Any]: ...


class AwsBackend(Backend[AwsPlacement]):
    """One provider (explicit region) and one environment for every instance."""

    name = "aws"
    placement = AwsPlacement
    summary = "{instance_type, subnet, disk, jump}"

    def jumps(self, settings: AwsStack) -> list[tuple[str, Jump]]:
        """Bastions in front of private subnets, where sites name one."""
        found = []
        for site in settings.spec.sites_on("aws"):
            placement = site.placement
            if isinstance(placement, AwsPlacement) and placement.jump is not None:
                found.append((f"site {site.name!r}: aws.jump.key_file", placement.jump.jump()))
        return found

    def check(self, placed: Sequence[tuple[str, AwsPlacement]]) -> None:
        if len({p.subnet is None for _, p in placed}) > 1:
            raise ValueError(
                "aws sites share one security group, so either all give aws.subnet (in one VPC) "
                "or none does (the default VPC)"
            )

    def declare(self, deploy: Deployment, sites: Sequence[Placed[AwsPlacement]]) -> list[Host]:
        settings: AwsStack = deploy.settings
        if settings.ssh_allowed_cidr is None:  # load_settings refuses such a stack
            raise ValueError("aws sites need sshAllowedCidr")
        key = deploy.the_login()
        provider = aws.Provider(
            "aws", region=settings.aws_region, opts=pulumi.ResourceOptions(parent=deploy.parent)
        )
        in_aws = deploy.providers(provider)
        environment = AwsEnvironment(
            "aws-env",
            stack=deploy.stack,
            provider=provider,
            login_public_key=key.public_key,
            ssh_allowed_cidr=settings.ssh_allowed_cidr,
            subnet=sites[0].placement.subnet,
            ami=settings.aws_ami,
            opts=in_aws,
        )
        hosts: list[Host] = []
        for site in sites:
            instance = AwsSite(
                site.name,
                site.placement,
                stack=deploy.stack,
                environment=environment,
                login_user=settings.aws_user,
                login_private_key=key.private_key,
                plan=site.plan,
                jump_private_key=_jump_key(deploy, site.placement),
                opts=in_aws,
            )
            hosts.append(
                Host(
                    name=site.name,
                    address=instance.address,
                    host_key=instance.host_public_key,
                    port=22,
                    user=settings.aws_user,
                    private_key=key.private_key,
                    jump=site.placement.jump.jump() if site.placement.jump else None,
                )
            )
        return hosts
