"""AWS: one AwsEnvironment (AMI lookup, key pair, SSH-only security group) and one AwsSite per
instance (host key, instance, provisioner).

SSH is admitted from one CIDR the user must set (no 0.0.0.0/0 default). Rules are separate
`vpc.SecurityGroup*Rule` resources, as the provider recommends over inline rules. A changed
user-data replaces the instance: cloud-init would not re-run it on a stop/start.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from fedinfra.cloudinit import render_user_data
from fedinfra.components.provisioner import HostAccess, Provisioner, ProvisionPlan
from fedinfra.spec import AwsPlacement

ENVIRONMENT_TYPE = "fedstack:aws:Environment"
SITE_TYPE = "fedstack:aws:Site"

#: Canonical's account, the publisher of the official Ubuntu AMIs
CANONICAL = "099720109477"
UBUNTU_2404_AMI_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"


class AwsEnvironment(pulumi.ComponentResource):
    """Shared by every AWS site: the Ubuntu 24.04 AMI, the key pair, the security group.

    Pass `providers=[aws.Provider(...)]` in opts (children inherit it); the invokes name the
    provider explicitly, since they are not children.
    """

    ami_id: pulumi.Output[str]
    key_pair: aws.ec2.KeyPair
    security_group: aws.ec2.SecurityGroup

    def __init__(
        self,
        name: str,
        *,
        stack: str,
        provider: aws.Provider,
        login_public_key: pulumi.Input[str],
        ssh_allowed_cidr: str,
        subnet: str | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(ENVIRONMENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(provider=provider, parent=self)
        tags = {"fedstack:stack": stack}

        self.ami_id = aws.ec2.get_ami_output(
            most_recent=True,
            owners=[CANONICAL],
            filters=[
                aws.ec2.GetAmiFilterArgs(name="name", values=[UBUNTU_2404_AMI_NAME]),
                aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
            ],
            opts=invoke,
        ).id
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
            description=f"fedstack {stack}: SSH from {ssh_allowed_cidr} only",
            vpc_id=vpc_id,
            tags=tags,
            opts=child,
        )
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
        # hosts fetch packages, images and talk to featurecloud.ai
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-all-out",
            security_group_id=self.security_group.id,
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            description="outbound: packages, container images, featurecloud.ai",
            opts=in_sg,
        )
        self.register_outputs({"ami_id": self.ami_id, "security_group": self.security_group.id})


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
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(SITE_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        host_key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519", opts=child)
        self.host_public_key = host_key.public_key_openssh.apply(lambda k: k.strip())

        def render(keys: list[str]) -> str:
            return render_user_data(
                hostname=name, host_private_key=keys[0], host_public_key=keys[1]
            )

        rendered: pulumi.Output[str] = pulumi.Output.all(
            host_key.private_key_openssh, host_key.public_key_openssh
        ).apply(render)
        user_data: pulumi.Output[str] = pulumi.Output.secret(rendered)
        instance = aws.ec2.Instance(
            f"{name}-vm",
            ami=environment.ami_id,
            instance_type=placement.instance_type,
            subnet_id=placement.subnet,
            vpc_security_group_ids=[environment.security_group.id],
            key_name=environment.key_pair.key_name,
            associate_public_ip_address=True,
            user_data=user_data,
            user_data_replace_on_change=True,
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=placement.disk, volume_type="gp3", encrypted=True
            ),
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(http_tokens="required"),
            tags={"Name": f"fedstack-{stack}-{name}", "fedstack:stack": stack},
            opts=child,
        )
        self.address = instance.public_ip

        self.provisioner = Provisioner(
            f"{name}-host",
            HostAccess(
                address=self.address,
                port=22,
                user=login_user,
                private_key=login_private_key,
                host_key=self.host_public_key,
            ),
            plan,
            opts=child,
        )
        self.register_outputs({"address": self.address, "host_public_key": self.host_public_key})
