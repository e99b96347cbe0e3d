"""The AWS backend alone under mocks: its placement model and cross-site rule, one provider and
environment for every instance, and the host facts it reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from fedinfra.backends import BACKENDS
from fedinfra.backends.aws import CANONICAL, AwsBackend, AwsPlacement
from fedinfra.backends.base import Placed
from tests.infra.backends.common import deployment, host_facts, parent_type, plan
from tests.infra.harness import is_secret_wrapper, run_program, setup

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CIDR = "198.51.100.7/32"


@dataclass(frozen=True)
class Settings:
    aws_user: str = "ubuntu"
    aws_region: str = "eu-west-1"
    ssh_allowed_cidr: str | None = CIDR
    aws_ami: str | None = None


def test_registered_under_its_stack_file_key():
    assert isinstance(BACKENDS["aws"], AwsBackend) and BACKENDS["aws"].placement is AwsPlacement
    assert BACKENDS["aws"].makes_machines


def test_placement_rules():
    assert AwsPlacement().instance_type == "t3.medium"
    with pytest.raises(ValidationError, match="is not a subnet id"):
        AwsPlacement(subnet="sn-1")
    with pytest.raises(ValidationError, match="is not an EC2 instance type"):
        AwsPlacement(instance_type="big")
    backend = AwsBackend()
    backend.check([("a", AwsPlacement()), ("b", AwsPlacement())])
    with pytest.raises(ValueError, match="share one security group"):
        backend.check([("a", AwsPlacement(subnet="subnet-0123abcd")), ("b", AwsPlacement())])


def test_two_instances_in_one_environment():
    h = setup("t", {})
    sites = [
        Placed("a", AwsPlacement(disk=50), plan()),
        Placed("b", AwsPlacement(instance_type="m5.large"), plan()),
    ]
    hosts = run_program(lambda: AwsBackend().declare(deployment(Settings()), sites))
    count = Counter(r.typ for r in h.mocks.resources)
    assert count["pulumi:providers:aws"] == 1 and count["fedstack:aws:Environment"] == 1
    assert count["fedstack:aws:Site"] == 2 and count["aws:ec2/instance:Instance"] == 2
    assert h.mocks.named("aws").inputs["region"] == "eu-west-1"
    for r in h.mocks.resources:
        if r.typ.startswith("aws:"):
            assert "::aws::" in r.provider, r.name
    (ami,) = [c for c in h.mocks.calls if c.token == "aws:ec2/getAmi:getAmi"]
    assert ami.args["owners"] == [CANONICAL]
    assert h.mocks.named("aws-env-ssh-in").inputs["cidrIpv4"] == CIDR
    assert h.mocks.named("aws-env-ssh").inputs["vpcId"] == "vpc-0default"
    a = h.mocks.named("a-vm")
    assert a.inputs["rootBlockDevice"]["volumeSize"] == 50
    assert h.mocks.named("b-vm").inputs["instanceType"] == "m5.large"
    assert is_secret_wrapper(a.inputs["userData"]) and a.inputs["userDataReplaceOnChange"]
    assert parent_type(h, "aws-env-ssh-in") == "aws:ec2/securityGroup:SecurityGroup"
    assert parent_type(h, "a-vm") == "fedstack:aws:Site"
    assert parent_type(h, "aws-env") == "test:index:Root"

    for host, name in zip(hosts, ("a", "b"), strict=True):
        fact = host_facts(host)
        assert fact["address"] == h.mocks.named(f"{name}-vm").outputs["publicIp"]
        assert fact["host_key"] == h.mocks.keys[f"{name}-host-key"][1].strip()
        assert (fact["port"], fact["user"]) == (22, "ubuntu")
        assert fact["private_key"] == h.mocks.keys["login-key"][0]


def test_subnet_puts_the_group_in_its_vpc():
    h = setup("t", {})
    sites = [Placed("a", AwsPlacement(subnet="subnet-0123abcd"), plan())]
    run_program(lambda: AwsBackend().declare(deployment(Settings()), sites))
    assert h.mocks.named("aws-env-ssh").inputs["vpcId"] == "vpc-0aaa"
    assert h.mocks.named("a-vm").inputs["subnetId"] == "subnet-0123abcd"


def test_refuses_to_open_ssh_without_a_cidr():
    setup("t", {})
    sites = [Placed("a", AwsPlacement(), plan())]
    with pytest.raises(Exception, match="sshAllowedCidr"):
        run_program(
            lambda: AwsBackend().declare(deployment(Settings(ssh_allowed_cidr=None)), sites)
        )
