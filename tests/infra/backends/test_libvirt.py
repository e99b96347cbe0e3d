"""The libvirt backend alone under mocks: its placement model, one hypervisor's network and
base image on its own provider, one VM per site, and the host facts it reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pulumi
import pytest
from pydantic import ValidationError

from fedinfra.backends import BACKENDS
from fedinfra.backends.base import Host, Placed
from fedinfra.backends.libvirt import (
    GIB,
    UBUNTU_2404_IMAGE,
    Hypervisor,
    LibvirtBackend,
    LibvirtPlacement,
)
from tests.infra.backends.common import deployment, host_facts, parent_type, plan
from tests.infra.harness import ed25519_pair, is_secret_wrapper, run_program, setup

HV_KEY = ed25519_pair()[1].strip()

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass(frozen=True)
class Spec:
    hypervisors: list[Hypervisor]

    def used_hypervisors(self) -> list[Hypervisor]:
        return self.hypervisors


@dataclass(frozen=True)
class Settings:
    vm_user: str = "fedstack"
    spec: Spec = field(default_factory=lambda: Spec([Hypervisor(name="hv1", uri="qemu:///system")]))


def test_registered_under_its_stack_file_key():
    assert isinstance(BACKENDS["libvirt"], LibvirtBackend)
    assert BACKENDS["libvirt"].placement is LibvirtPlacement
    assert BACKENDS["libvirt"].makes_machines


def test_placement_defaults_and_bounds():
    assert LibvirtPlacement() == LibvirtPlacement(hypervisor="local", memory=2048, vcpus=2, disk=20)
    with pytest.raises(ValidationError):
        LibvirtPlacement(memory=512)
    with pytest.raises(ValidationError):
        LibvirtPlacement.model_validate({"memroy": 4096})
    assert Hypervisor(name="hv1", uri="qemu:///system").image == UBUNTU_2404_IMAGE
    with pytest.raises(ValidationError, match="must name the user"):
        Hypervisor(name="hv1", uri="qemu+ssh://host/system")


def test_two_vms_on_one_hypervisor():
    h = setup("t", {})
    sites = [
        Placed("a", LibvirtPlacement(hypervisor="hv1", disk=40), plan()),
        Placed("b", LibvirtPlacement(hypervisor="hv1", memory=4096), plan()),
    ]

    def build() -> list[Host]:
        return LibvirtBackend().declare(deployment(Settings()), sites)

    hosts = run_program(build)
    count = Counter(r.typ for r in h.mocks.resources)
    assert count["pulumi:providers:libvirt"] == 1
    assert count["fedstack:libvirt:Hypervisor"] == 1 and count["fedstack:libvirt:Site"] == 2
    assert count["libvirt:index/domain:Domain"] == 2
    assert count["libvirt:index/volume:Volume"] == 3  # the base image and one overlay per VM
    assert count["fedstack:host:Provisioner"] == 2
    assert h.mocks.named("libvirt-hv1").inputs["uri"] == "qemu:///system"
    for r in h.mocks.resources:
        if r.typ.startswith("libvirt:"):
            assert "::libvirt-hv1::" in r.provider, r.name
            if "name" in r.inputs:
                assert h.request(r.name).deleteBeforeReplace, r.name
    assert h.mocks.named("hv1-net").inputs["name"] == "fedstack-t"
    assert h.mocks.named("a-root").inputs["size"] == 40 * GIB
    assert h.mocks.named("b-vm").inputs["memory"] == 4096
    assert h.mocks.named("a-vm").inputs["name"] == "fedstack-t-a"
    assert is_secret_wrapper(h.mocks.named("a-seed").inputs["userData"])
    assert parent_type(h, "a-vm") == "fedstack:libvirt:Site"
    assert parent_type(h, "a-host") == "fedstack:libvirt:Site"
    assert parent_type(h, "a") == "test:index:Root"

    facts = [host_facts(host) for host in hosts]
    login_private = h.mocks.keys["login-key"][0]
    for fact, name in zip(facts, ("a", "b"), strict=True):
        vm = h.mocks.named(f"{name}-vm")
        assert fact["address"] == vm.outputs["networkInterfaces"][0]["addresses"][0]
        assert fact["host_key"] == h.mocks.keys[f"{name}-host-key"][1].strip()
        assert (fact["port"], fact["user"]) == (22, "fedstack")
        assert fact["private_key"] == login_private and fact["private_key_file"] is None


def test_sites_go_to_their_own_hypervisor():
    h = setup("t", {})
    hvs = [
        Hypervisor(name="hv1", uri="qemu:///system"),
        Hypervisor(
            name="hv2",
            uri="qemu+ssh://me@hv2.example/system?keyfile=/home/me/.ssh/hv",
            network_cidr="10.78.0.0/24",
            host_key=HV_KEY,
        ),
    ]
    sites = [
        Placed("a", LibvirtPlacement(hypervisor="hv2"), plan()),
        Placed("b", LibvirtPlacement(hypervisor="hv1"), plan()),
    ]
    jump_key = pulumi.Output.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nhv\n")
    hosts = run_program(
        lambda: LibvirtBackend().declare(
            deployment(Settings(spec=Spec(hvs)), jump_keys={"/home/me/.ssh/hv": jump_key}), sites
        )
    )
    assert "::libvirt-hv2::" in h.mocks.named("a-vm").provider
    assert "::libvirt-hv1::" in h.mocks.named("b-vm").provider
    assert h.mocks.named("hv2-net").inputs["addresses"] == ["10.78.0.0/24"]
    assert sorted(host.name for host in hosts) == ["a", "b"]


def test_needs_the_login_key():
    setup("t", {})
    sites = [Placed("a", LibvirtPlacement(hypervisor="hv1"), plan())]
    with pytest.raises(Exception, match="no login key"):
        run_program(lambda: LibvirtBackend().declare(deployment(Settings(), login=False), sites))
