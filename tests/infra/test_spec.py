"""The federation spec and stack settings, without Pulumi: a wrong value is refused with one
line that names the site (or key) and the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from fedinfra.settings import CONFIG_KEYS, load_settings
from fedinfra.spec import SpecError, parse_spec
from tests.infra.harness import ROOT, stack_config

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def sim_spec() -> dict[str, Any]:
    cfg = yaml.safe_load((ROOT / "Pulumi.sim.yaml").read_text())["config"]
    return {"sites": cfg["fedstack:sites"], "hypervisors": cfg["fedstack:hypervisors"]}


def test_committed_sim_spec_is_valid():
    spec = parse_spec(sim_spec())
    assert [s.name for s in spec.sites] == ["alice", "bob", "carol"]
    assert [s.name for s in spec.sites if s.coordinator] == ["alice"]
    assert {s.backend for s in spec.sites} == {"libvirt"}
    assert [h.uri for h in spec.used_hypervisors()] == ["qemu:///system"]


def _with(change: Any) -> dict[str, Any]:
    raw = copy.deepcopy(sim_spec())
    change(raw)
    return raw


BYO = {"address": "192.0.2.1", "user": "fed", "key_file": "~/.ssh/k", "host_key": HOST_KEY}

WRONG = [
    (
        lambda r: r["sites"][1]["libvirt"].update(memory=512),
        "site 'bob': libvirt.memory: must be >= 1024",
    ),
    (
        lambda r: r["sites"][2]["libvirt"].update(vcpus=0),
        "site 'carol': libvirt.vcpus: must be >= 1",
    ),
    (
        lambda r: r["sites"][1]["libvirt"].update(memroy=4096),
        "site 'bob': libvirt.memroy: is not a known field",
    ),
    (lambda r: r["sites"][1].pop("fc_user"), "site 'bob': fc_user: is required"),
    (
        lambda r: r["sites"][1].update(fc_user="bob"),
        "site 'bob': fc_user: 'bob' is not an e-mail address (a FeatureCloud account)",
    ),
    (
        lambda r: r["sites"][1].update(aws={"instance_type": "t3.medium"}),
        "site 'bob': give exactly one of libvirt, aws, ssh (found libvirt, aws)",
    ),
    (
        lambda r: r["sites"][1].pop("libvirt"),
        "site 'bob': give exactly one of libvirt, aws, ssh",
    ),
    (
        lambda r: r["sites"][1].update(coordinator=True),
        "federation: exactly one site must have coordinator: true, found 2 (alice, bob)",
    ),
    (
        lambda r: r["sites"][2].update(name="bob"),
        "federation: site names must be unique: bob repeated",
    ),
    (
        lambda r: r["sites"][1].update(name="Bob"),
        "site 'Bob': name: must be lowercase letters, digits and '-', starting with a letter",
    ),
    (
        lambda r: r["sites"][1]["libvirt"].update(hypervisor="hv9"),
        "site 'bob': libvirt.hypervisor: 'hv9' is not in hypervisors (local)",
    ),
    (
        lambda r: r["hypervisors"][0].update(uri="qemu+ssh://hv1/system"),
        "hypervisor 'local': uri: qemu+ssh URIs must name the user (user@host)",
    ),
    (
        lambda r: r["sites"][1].update(libvirt=None, ssh={**BYO, "host_key": "AAAA"}),
        "site 'bob': ssh.host_key: must be an OpenSSH public key like 'ssh-ed25519 AAAA...'",
    ),
    (
        lambda r: r["sites"][1].update(libvirt=None, ssh={**BYO, "port": 70000}),
        "site 'bob': ssh.port: must be <= 65535",
    ),
    (
        lambda r: r["sites"][1].update(libvirt=None, aws={"subnet": "sn-1"}),
        "site 'bob': aws.subnet: 'sn-1' is not a subnet id like 'subnet-0123abcd'",
    ),
    (
        lambda r: (
            r["sites"][1].update(libvirt=None, aws={"subnet": "subnet-0123abcd"}),
            r["sites"][2].update(libvirt=None, aws={}),
        ),
        "federation: aws sites share one security group, so either all give aws.subnet "
        "(in one VPC) or none does (the default VPC)",
    ),
    (
        lambda r: r["sites"][1].update(workdir="/"),
        "site 'bob': workdir: '/' must be an absolute path at least two levels deep",
    ),
]


@pytest.mark.parametrize(("change", "line"), WRONG)
def test_wrong_spec_is_one_line(change, line):
    with pytest.raises(SpecError) as info:
        parse_spec(_with(change))
    assert str(info.value) == line
    assert "\n" not in str(info.value)


def test_several_problems_still_one_line():
    def two(r):
        r["sites"][1]["libvirt"]["memory"] = 1
        r["sites"][2]["libvirt"]["disk"] = 1

    with pytest.raises(
        SpecError, match=r"^site 'bob': libvirt.memory: must be >= 1024 \(and 1 more problem\)$"
    ):
        parse_spec(_with(two))


def _settings(**extra: str) -> dict[str, str]:
    cfg, _ = stack_config("sim")
    return {**cfg, **extra}


def test_committed_sim_settings_and_defaults():
    settings = load_settings(_settings())
    assert settings.workdir == "/srv/fedstack"
    assert settings.featurecloud_version == "0.1.0"
    assert settings.docker_required is True
    assert settings.ssh_allowed_cidr is None


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ({"fedstack:memory": "1"}, "config fedstack:memory: not a fedstack setting"),
        (
            {"fedstack:dockerRequired": "yes"},
            "config fedstack:dockerRequired: must be true or false",
        ),
        (
            {"fedstack:readinessTimeout": "soon"},
            "config fedstack:readinessTimeout: 'soon' is not a duration",
        ),
        ({"fedstack:sites": "[{"}, "config fedstack:sites: not a structured value"),
        ({"fedstack:workdir": "/srv"}, "config fedstack:workdir: '/srv' must be an absolute path"),
        (
            {"fedstack:sshAllowedCidr": "0.0.0.0/0"},
            "config fedstack:sshAllowedCidr: must not admit the whole internet",
        ),
    ],
)
def test_wrong_setting_is_one_line(extra, line):
    with pytest.raises(SpecError) as info:
        load_settings(_settings(**extra))
    assert str(info.value).startswith(line)
    assert "\n" not in str(info.value)


def test_aws_sites_need_the_ssh_cidr():
    sites = [{"name": "a", "fc_user": "a@x.org", "coordinator": True, "aws": {}}]
    with pytest.raises(
        SpecError, match=r"^config fedstack:sshAllowedCidr: is required for AWS sites"
    ):
        load_settings(_settings(**{"fedstack:sites": json.dumps(sites)}))
    ok = load_settings(
        _settings(
            **{"fedstack:sites": json.dumps(sites), "fedstack:sshAllowedCidr": "198.51.100.7/32"}
        )
    )
    assert ok.ssh_allowed_cidr == "198.51.100.7/32"


def test_pulumi_yaml_documents_every_key_with_the_code_defaults():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "fedstack"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }
    declared = project["config"]
    # every key is declared with its type (issue 10: Pulumi types objects since v3.186), and
    # its default when the code has one; `sites` has none, so the CLI requires it per stack
    for key, spec in CONFIG_KEYS.items():
        decl = declared[key]
        assert decl["description"], key
        assert decl["type"] == spec.kind, key
        if spec.default is None:
            assert "default" not in decl, key
        else:
            assert decl["default"] == spec.default, key
        if spec.kind == "array":
            assert decl["items"] == {"type": "object"}, key
    assert set(declared) == set(CONFIG_KEYS)
