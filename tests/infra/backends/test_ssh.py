"""The bring-your-own backend alone under mocks: its placement model, one provisioner per host
on the command provider only, a cleanup on destroy, and the host facts it reports."""

from __future__ import annotations

import pulumi
import pytest
from pydantic import ValidationError

from fedinfra.backends import BACKENDS
from fedinfra.backends.base import Placed
from fedinfra.backends.ssh import SshBackend, SshPlacement
from tests.infra.backends.common import deployment, host_facts, parent_type, plan
from tests.infra.harness import ed25519_pair, is_secret_wrapper, run_program, setup

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def placement(**extra: object) -> SshPlacement:
    return SshPlacement.model_validate(
        {"address": "192.0.2.10", "user": "fed", "key_file": "~/.ssh/k", "host_key": HOST_KEY}
        | extra
    )


def test_registered_under_its_stack_file_key():
    backend = BACKENDS["ssh"]
    assert isinstance(backend, SshBackend) and backend.placement is SshPlacement
    assert not backend.makes_machines
    assert backend.key_file(placement()) == "~/.ssh/k"
    assert backend.provisions(placement()) and not backend.provisions(placement(provision=False))


def test_placement_rules():
    assert placement(host_key=HOST_KEY + "  ").host_key == HOST_KEY
    with pytest.raises(ValidationError, match="OpenSSH public key"):
        placement(host_key="AAAA")
    with pytest.raises(ValidationError, match="not a Unix user name"):
        placement(user="Root User")


def test_one_host_provisioned_and_cleaned_up():
    h = setup("t", {})
    private, _ = ed25519_pair()
    sites = [Placed("lab", placement(port=2222), plan(cloud_init=False, cleanup=True))]

    def build():
        deploy = deployment(
            None,
            login=False,
            key_texts={"lab": pulumi.Output.secret(private)},
            key_files={"lab": "/home/me/.ssh/k"},
        )
        return SshBackend().declare(deploy, sites)

    (host,) = run_program(build)
    assert {r.typ for r in h.mocks.resources if r.custom} == {
        "pulumi:providers:tls",
        "pulumi:providers:command",
        "command:remote:Command",
    }
    names = {r.name for r in h.mocks.of_type("command:remote:Command")}
    assert names == {"lab-host-ready", "lab-host-provision", "lab-host-cleanup"}
    ready = h.mocks.named("lab-host-ready")
    assert is_secret_wrapper(ready.inputs["connection"])
    conn = ready.inputs["connection"]["value"]
    assert (conn["host"], conn["port"], conn["user"]) == ("192.0.2.10", 2222, "fed")
    assert conn["hostKey"] == HOST_KEY and conn["privateKey"] == private
    assert "cloud-init" not in ready.inputs["create"]
    assert "::command::" in ready.provider
    assert parent_type(h, "lab-host") == "fedstack:ssh:Site"
    assert parent_type(h, "lab") == "test:index:Root"
    assert host_facts(host) == {
        "name": "lab",
        "address": "192.0.2.10",
        "host_key": HOST_KEY,
        "port": 2222,
        "user": "fed",
        "private_key": None,
        "private_key_file": "/home/me/.ssh/k",
    }


def test_opt_out_is_only_checked():
    h = setup("t", {})
    sites = [Placed("lab", placement(provision=False), plan(cloud_init=False, provision=False))]
    key = pulumi.Output.secret(ed25519_pair()[0])
    run_program(
        lambda: SshBackend().declare(deployment(None, login=False, key_texts={"lab": key}), sites)
    )
    names = {r.name for r in h.mocks.of_type("command:remote:Command")}
    assert names == {"lab-host-ready", "lab-host-check"}
