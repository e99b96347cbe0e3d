"""The Pulumi program under the SDK's mocks, for each stack file as committed: resources and
inputs, options (parents, providers, dependencies, timeouts), one readiness gate before each
host's provisioning, no default provider, secrets still secret, the inventory valid."""

from __future__ import annotations

import json
import re
import runpy
import subprocess
from collections import Counter
from typing import Any

import pulumi
import pytest
import yaml

from fedinfra.backends.libvirt import UBUNTU_2404_IMAGE
from fedinfra.components.provisioner import gate_dials
from fedinfra.inventory import Inventory
from fedinfra.script import CHECK_SCRIPT, PROVISION_SCRIPT, load_script, script_sha256
from runner.cli import stack_workflow
from runner.plan.workflow import load_workflow
from tests.infra.harness import (
    ROOT,
    Harness,
    ed25519_pair,
    fake_home,
    is_secret_wrapper,
    resolve,
    run_program,
    setup,
    stack_config,
)

# importing pulumi_aws warns about its own deprecated resources; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

GIB = 1024**3
CIDR = "198.51.100.7/32"


def unwrap(value: Any) -> Any:
    return value["value"] if is_secret_wrapper(value) else value


def run_main(h: Harness, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """__main__.py exactly as the CLI runs it, with the exports caught."""
    exports: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exports.__setitem__(name, value))
    run_program(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))
    h.exports = exports
    return exports


def custom(h: Harness) -> list[Any]:
    return [r for r in h.mocks.resources if r.custom and not r.typ.startswith("pulumi:providers:")]


def common_checks(h: Harness, stack: str) -> None:
    """What holds for every stack: providers, gates, provisioning, components."""
    # no resource on a default provider, and the stack file disables every package it uses
    assert all(r.provider for r in custom(h)), [r.name for r in custom(h) if not r.provider]
    stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    disabled = set(stack_file["pulumi:disable-default-providers"])
    assert {r.typ.split(":")[0] for r in custom(h)} <= disabled
    for r in custom(h):
        pkg = r.typ.split(":")[0]
        assert re.search(rf"[:$]pulumi:providers:{pkg}::", r.provider), (r.name, r.provider)

    # components: proper tokens, every one registers outputs, every resource has a parent
    for r in h.mocks.resources:
        if not r.custom:
            assert r.typ.startswith("fedstack:") and r.typ.count(":") == 2, r.typ
    fed_urn = h.urn_of(stack)
    for name, req in h.monitor.requests.items():
        if req.type != "pulumi:pulumi:Stack":
            assert req.parent, f"{name} has no parent"
    # the root component sits right under the stack, everything else under it
    # (the mocks keep the first test's stack resource for the whole process)
    assert "::pulumi:pulumi:Stack::fedstack-" in h.request(stack).parent
    parent_of = {
        h.urn_of(name): req.parent
        for name, req in h.monitor.requests.items()
        if req.type != "pulumi:pulumi:Stack"
    }
    for urn in parent_of:
        chain, at = [], urn
        while at in parent_of and at != fed_urn:
            at = parent_of[at]
            chain.append(at)
        assert at == fed_urn, f"{urn} is not under the federation: {chain}"
    assert fed_urn.endswith(f"fedstack:index:Federation::{stack}")

    # destroy takes everything along: nothing protected or retained
    for name, req in h.monitor.requests.items():
        assert not req.protect and not req.retainOnDelete, name
    # libvirt objects with explicit names go before their replacement is made
    for r in custom(h):
        if r.typ.startswith("libvirt:") and "name" in r.inputs:
            assert h.request(r.name).deleteBeforeReplace, r.name

    # exactly one readiness gate per host, and provisioning waits for it
    commands = h.mocks.of_type("command:remote:Command")
    gates = [c for c in commands if c.name.endswith("-ready")]
    setups = [c for c in commands if c.name.endswith(("-provision", "-check"))]
    hosts = Counter(c.name.rsplit("-", 1)[0] for c in gates)
    assert hosts and all(n == 1 for n in hosts.values()), hosts
    assert sorted(hosts) == sorted(c.name.rsplit("-", 1)[0] for c in setups)
    for cmd in commands:  # no connection anywhere accepts an unknown host key
        assert unwrap(cmd.inputs["connection"])["hostKey"].startswith("ssh-"), cmd.name
    for gate in gates:
        conn = unwrap(gate.inputs["connection"])
        # bounded (point 4 of issue 10): enough dials for the deadline, then it stops
        assert conn["dialErrorLimit"] == gate_dials("15m") and conn["perDialTimeout"] > 0
        assert conn["hostKey"].startswith("ssh-ed25519 ")
        req = h.request(gate.name)
        assert req.customTimeouts.create == "15m"
        byo = h.mocks.named(gate.name.removesuffix("-host-ready")).typ == "fedstack:ssh:Site"
        waits_for_cloud_init = "cloud-init status --wait" in gate.inputs["create"]
        assert waits_for_cloud_init != byo, gate.name
    for step in setups:
        host = step.name.rsplit("-", 1)[0]
        req = h.request(step.name)
        gate_urn = h.urn_of(f"{host}-ready")
        # dependencies also hold the resources its inputs come from; exactly one is a gate
        deps = list(req.dependencies)
        assert [d for d in deps if d.endswith("-ready")] == [gate_urn], (step.name, deps)
        assert req.parent == h.urn_of(host)
        conn = unwrap(step.inputs["connection"])
        gate_conn = unwrap(h.mocks.named(f"{host}-ready").inputs["connection"])
        assert conn["host"] == gate_conn["host"] and conn["hostKey"] == gate_conn["hostKey"]
        assert step.inputs["create"] == "bash -s"
        script = load_script(PROVISION_SCRIPT if step.name.endswith("-provision") else CHECK_SCRIPT)
        assert unwrap(step.inputs["stdin"]).endswith(script)
        assert step.inputs["triggers"] == [script_sha256(script)]
        assert list(req.replaceOnChanges) == ["triggers[*]"]
        assert req.customTimeouts.create == "30m"
        # the connection (with its key) is secret; the command text carries no setting
        assert is_secret_wrapper(step.inputs["connection"])
        assert "FEDSTACK_" not in step.inputs["create"]


def check_exports(h: Harness, exports: dict[str, Any], stack: str) -> Inventory:
    value, secret, known = resolve(exports["inventory"])
    assert secret and known
    inventory = Inventory.model_validate(value)
    assert inventory.version == 1 and inventory.stack == stack
    sites_view, sites_secret, _ = resolve(exports["sites"])
    assert not sites_secret
    text = json.dumps(sites_view)
    assert "PRIVATE KEY" not in text
    for site in inventory.sites:
        assert site.ssh is not None
        if site.ssh.private_key is not None:
            assert site.ssh.private_key.get_secret_value() not in text
    return inventory


# ---------------------------------------------------------------------------------- sim


def test_sim_stack_as_committed(monkeypatch):
    cfg, secret_keys = stack_config("sim")
    h = setup("sim", cfg, secret_keys)
    exports = run_main(h, monkeypatch)
    common_checks(h, "sim")

    count = Counter(r.typ for r in h.mocks.resources)
    assert count == {
        "fedstack:index:Federation": 1,
        "pulumi:providers:tls": 1,
        "pulumi:providers:command": 1,
        "pulumi:providers:libvirt": 1,
        "tls:index/privateKey:PrivateKey": 4,  # login key + one host key per VM
        "fedstack:libvirt:Hypervisor": 1,
        "libvirt:index/network:Network": 1,
        "libvirt:index/volume:Volume": 4,  # base image + one overlay per VM
        "fedstack:libvirt:Site": 3,
        "libvirt:index/cloudInitDisk:CloudInitDisk": 3,
        "libvirt:index/domain:Domain": 3,
        "fedstack:host:Provisioner": 3,
        "command:remote:Command": 6,
    }
    (provider,) = h.mocks.of_type("pulumi:providers:libvirt")
    assert provider.inputs["uri"] == "qemu:///system"

    (net,) = h.mocks.of_type("libvirt:index/network:Network")
    assert net.inputs["mode"] == "nat" and net.inputs["addresses"] == ["10.77.0.0/24"]
    assert net.inputs["dhcp"] == {"enabled": True}
    base = h.mocks.named("local-base")
    assert base.inputs["source"] == UBUNTU_2404_IMAGE and base.inputs["format"] == "qcow2"

    for site in ("alice", "bob", "carol"):
        root = h.mocks.named(f"{site}-root")
        assert root.inputs["baseVolumeId"] == base.id and root.inputs["size"] == 20 * GIB
        seed = h.mocks.named(f"{site}-seed")
        # user-data holds the host's private key: secret in state
        assert is_secret_wrapper(seed.inputs["userData"])
        user_data = yaml.safe_load(unwrap(seed.inputs["userData"]))
        host_private, host_public = h.mocks.keys[f"{site}-host-key"]
        login_private, login_public = h.mocks.keys["login-key"]
        assert user_data["ssh_keys"]["ed25519_private"] == host_private
        assert user_data["users"][0]["ssh_authorized_keys"] == [login_public.strip()]
        dom = h.mocks.named(f"{site}-vm")
        assert dom.inputs["memory"] == 2048 and dom.inputs["vcpu"] == 2
        assert dom.inputs["cloudinit"] == seed.id
        assert [d["volumeId"] for d in dom.inputs["disks"]] == [root.id]
        nic = dom.inputs["networkInterfaces"][0]
        assert nic["networkId"] == net.id and nic["waitForLease"] is True
        req = h.request(f"{site}-vm")
        assert req.customTimeouts.create == "10m" and req.deleteBeforeReplace
        assert req.parent == h.urn_of(site)
        assert h.request(site).parent == h.urn_of("sim")
        gate = unwrap(h.mocks.named(f"{site}-host-ready").inputs["connection"])
        assert gate["host"] == dom.outputs["networkInterfaces"][0]["addresses"][0]
        assert gate["hostKey"] == host_public.strip() and gate["user"] == "fedstack"
        assert gate["privateKey"] == login_private

    inventory = check_exports(h, exports, "sim")
    assert inventory.coordinator.name == "alice"
    for entry in inventory.sites:
        dom = h.mocks.named(f"{entry.name}-vm")
        assert entry.ssh is not None
        assert entry.ssh.address == dom.outputs["networkInterfaces"][0]["addresses"][0]
        assert entry.ssh.host_keys == [h.mocks.keys[f"{entry.name}-host-key"][1].strip()]
        assert entry.ssh.private_key is not None
        assert entry.ssh.private_key.get_secret_value() == h.mocks.keys["login-key"][0]
        assert entry.controller.data_dir == "/srv/fedstack/controller-data"
    # the runner's default workflow for this stack fits the inventory the stack exports
    workflow_path = stack_workflow("sim", ROOT)
    assert workflow_path is not None
    workflow = load_workflow(workflow_path, inventory)
    assert workflow.app == "mean-app" and set(workflow.sites) == {"alice", "bob", "carol"}


def test_generated_user_data_passes_cloud_init_schema(tmp_path, monkeypatch):
    cfg, secret_keys = stack_config("sim")
    h = setup("sim", cfg, secret_keys)
    run_main(h, monkeypatch)
    seed = h.mocks.named("alice-seed")
    path = tmp_path / "user-data"
    path.write_text(unwrap(seed.inputs["userData"]))
    done = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_passwords_stay_secret(monkeypatch):
    cfg, _ = stack_config("sim")
    cfg["fedstack:fcPasswords"] = json.dumps({"alice@fedstack.example": "s3cret-pw"})
    h = setup("sim", cfg, ["fedstack:fcPasswords"])
    exports = run_main(h, monkeypatch)
    value, secret, _ = resolve(exports["inventory"])
    assert secret
    inventory = Inventory.model_validate(value)
    assert inventory.credentials["alice@fedstack.example"].get_secret_value() == "s3cret-pw"
    view, view_secret, _ = resolve(exports["sites"])
    assert not view_secret and "s3cret-pw" not in json.dumps(view)
    # nor did the password reach any resource input
    assert "s3cret-pw" not in repr([r.inputs for r in h.mocks.resources])


def test_pip_index_token_only_on_stdin_and_secret(monkeypatch):
    cfg, _ = stack_config("sim")
    cfg["fedstack:pipIndexUrl"] = "https://tok:abc123@pypi.example/simple"
    h = setup("sim", cfg, ["fedstack:pipIndexUrl"])
    run_main(h, monkeypatch)
    for r in h.mocks.of_type("command:remote:Command"):
        assert "abc123" not in r.inputs.get("create", "")
        if r.name.endswith("-provision"):
            assert is_secret_wrapper(r.inputs["stdin"])
            assert "export PIP_INDEX_URL=https://tok:abc123@" in unwrap(r.inputs["stdin"])


def test_wrong_spec_fails_with_one_line(monkeypatch):
    cfg, _ = stack_config("sim")
    sites = json.loads(cfg["fedstack:sites"])
    sites[1]["libvirt"]["memory"] = 512
    cfg["fedstack:sites"] = json.dumps(sites)
    h = setup("sim", cfg)
    with pytest.raises(pulumi.RunError) as info:
        run_main(h, monkeypatch)
    assert str(info.value) == "site 'bob': libvirt.memory: must be >= 1024"
    assert not h.mocks.resources


def test_several_hypervisors_are_a_config_change(monkeypatch, tmp_path):
    key = fake_home(tmp_path)
    cfg, _ = stack_config("sim")
    hv_key = ed25519_pair()[1].strip()
    hv1_uri = f"qemu+ssh://me@hv1.example/system?keyfile={key}"
    hv2_uri = f"qemu+ssh://me@hv2.example/system?keyfile={key}"
    cfg["fedstack:hypervisors"] = json.dumps(
        [
            {"name": "hv1", "uri": hv1_uri, "host_key": hv_key},
            {"name": "hv2", "uri": hv2_uri, "network_cidr": "10.78.0.0/24", "host_key": hv_key},
        ]
    )
    sites = json.loads(cfg["fedstack:sites"])
    for site, hv in zip(sites, ("hv1", "hv2", "hv2"), strict=True):
        site["libvirt"]["hypervisor"] = hv
    cfg["fedstack:sites"] = json.dumps(sites)
    h = setup("sim", cfg)
    run_main(h, monkeypatch)
    common_checks(h, "sim")
    providers = {p.name: p for p in h.mocks.of_type("pulumi:providers:libvirt")}
    assert {n: p.inputs["uri"] for n, p in providers.items()} == {
        "libvirt-hv1": hv1_uri,
        "libvirt-hv2": hv2_uri,
    }
    on = {"alice": "hv1", "bob": "hv2", "carol": "hv2"}
    for site, hv in on.items():
        for res in (f"{site}-vm", f"{site}-root", f"{site}-seed"):
            assert f"::libvirt-{hv}::" in h.mocks.named(res).provider, res
    assert len(h.mocks.of_type("libvirt:index/network:Network")) == 2
    assert "::libvirt-hv2::" in h.mocks.named("hv2-net").provider


# -------------------------------------------------------------------------------- cloud


def test_cloud_stack_as_committed_demands_the_ssh_cidr(monkeypatch, tmp_path):
    fake_home(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg, secret_keys = stack_config("cloud")
    h = setup("cloud", cfg, secret_keys)
    with pytest.raises(pulumi.RunError) as info:
        run_main(h, monkeypatch)
    assert str(info.value).startswith("config fedstack:sshAllowedCidr: is required for AWS sites")
    assert "\n" not in str(info.value)


def test_cloud_stack_with_cidr(monkeypatch, tmp_path):
    key_file = fake_home(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg, secret_keys = stack_config("cloud")
    cfg["fedstack:sshAllowedCidr"] = CIDR
    h = setup("cloud", cfg, secret_keys)
    exports = run_main(h, monkeypatch)
    common_checks(h, "cloud")

    count = Counter(r.typ for r in h.mocks.resources)
    assert count["aws:ec2/instance:Instance"] == 2
    assert count["fedstack:ssh:Site"] == 1 and count["fedstack:aws:Site"] == 2
    assert not [t for t in count if t.startswith("libvirt")]
    (aws_provider,) = h.mocks.of_type("pulumi:providers:aws")
    assert aws_provider.inputs["region"] == "eu-central-1"

    (ami_call,) = [c for c in h.mocks.calls if c.token == "aws:ec2/getAmi:getAmi"]
    assert ami_call.args["owners"] == ["099720109477"] and ami_call.args["mostRecent"] is True
    assert "ubuntu-noble-24.04-amd64-server" in json.dumps(ami_call.args["filters"])
    assert "$pulumi:providers:aws::aws::" in ami_call.provider

    (key_pair,) = h.mocks.of_type("aws:ec2/keyPair:KeyPair")
    assert key_pair.inputs["publicKey"] == h.mocks.keys["login-key"][1]
    (rule,) = h.mocks.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["cidrIpv4"] == CIDR
    assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (
        22,
        22,
        "tcp",
    )
    assert not [
        r
        for r in h.mocks.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs.get("cidrIpv4") == "0.0.0.0/0"
    ]
    (sg,) = h.mocks.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert sg.inputs["vpcId"] == "vpc-0default" and "ingress" not in sg.inputs

    for site in ("hospital-a", "hospital-b"):
        inst = h.mocks.named(f"{site}-vm")
        assert inst.inputs["ami"] == "ami-0abcdef1234567890"
        assert inst.inputs["instanceType"] == "t3.medium"
        assert inst.inputs["keyName"] == key_pair.outputs["keyName"]
        assert inst.inputs["vpcSecurityGroupIds"] == [sg.id]
        assert inst.inputs["userDataReplaceOnChange"] is True
        assert is_secret_wrapper(inst.inputs["userData"])
        gate = unwrap(h.mocks.named(f"{site}-host-ready").inputs["connection"])
        assert gate["host"] == inst.outputs["publicIp"] and gate["user"] == "ubuntu"

    # the partner's host: pinned key from config, its own key file, a cleanup on destroy only
    gate = unwrap(h.mocks.named("partner-lab-host-ready").inputs["connection"])
    stack_site = yaml.safe_load((ROOT / "Pulumi.cloud.yaml").read_text())["config"][
        "fedstack:sites"
    ][2]["ssh"]
    assert gate["host"] == "192.0.2.10" and gate["hostKey"] == stack_site["host_key"]
    assert gate["privateKey"] == key_file.read_text()
    cleanup = h.mocks.named("partner-lab-host-cleanup")
    assert cleanup.inputs["create"] == "true"
    assert "featurecloud controller stop fc-controller" in cleanup.inputs["delete"]
    assert "w=/srv/fedstack\n" in cleanup.inputs["delete"]
    assert 'root rm -rf -- "$w"' in cleanup.inputs["delete"]
    assert h.urn_of("partner-lab-host-ready") in h.request("partner-lab-host-cleanup").dependencies
    assert not [
        r for r in h.mocks.resources if r.name.startswith("hospital") and "cleanup" in r.name
    ]

    inventory = check_exports(h, exports, "cloud")
    lab = inventory.site("partner-lab")
    assert lab.ssh is not None and lab.ssh.private_key is None
    assert lab.ssh.private_key_file == str(key_file.resolve())
    assert lab.ssh.host_keys == [stack_site["host_key"]]
    a = inventory.site("hospital-a")
    assert a.ssh is not None and a.ssh.address == h.mocks.named("hospital-a-vm").outputs["publicIp"]
    workflow_path = stack_workflow("cloud", ROOT)
    assert workflow_path is not None
    workflow = load_workflow(workflow_path, inventory)
    assert [h.path for h in workflow.sites["partner-lab"].host] == ["/srv/partner-lab/cohort.csv"]


def test_byo_opt_out_is_only_checked(monkeypatch, tmp_path):
    fake_home(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg, _ = stack_config("cloud")
    sites = json.loads(cfg["fedstack:sites"])
    sites = [s for s in sites if "ssh" in s]
    sites[0]["coordinator"] = True
    sites[0]["ssh"]["provision"] = False
    cfg["fedstack:sites"] = json.dumps(sites)
    h = setup("cloud", cfg)
    run_main(h, monkeypatch)
    common_checks(h, "cloud")
    names = {r.name for r in h.mocks.of_type("command:remote:Command")}
    assert names == {"partner-lab-host-ready", "partner-lab-host-check", "partner-lab-host-cleanup"}
    assert unwrap(h.mocks.named("partner-lab-host-check").inputs["stdin"]) == load_script(
        CHECK_SCRIPT
    )
    # no machine made, so no generated key and no tls resource at all
    assert not h.mocks.of_type("tls:index/privateKey:PrivateKey")


def test_missing_byo_key_file_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg, _ = stack_config("cloud")
    cfg["fedstack:sshAllowedCidr"] = CIDR
    h = setup("cloud", cfg)
    with pytest.raises(pulumi.RunError, match=r"^site 'partner-lab': ssh.key_file: cannot read "):
        run_main(h, monkeypatch)


def test_aws_subnet_puts_the_group_in_its_vpc(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg, _ = stack_config("cloud")
    sites = [s for s in json.loads(cfg["fedstack:sites"]) if "aws" in s]
    for site in sites:
        site["aws"]["subnet"] = "subnet-0123abcd"
    cfg["fedstack:sites"] = json.dumps(sites)
    cfg["fedstack:sshAllowedCidr"] = CIDR
    h = setup("cloud", cfg)
    run_main(h, monkeypatch)
    common_checks(h, "cloud")
    (call,) = [c for c in h.mocks.calls if c.token == "aws:ec2/getSubnet:getSubnet"]
    assert call.args["id"] == "subnet-0123abcd"
    (sg,) = h.mocks.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert sg.inputs["vpcId"] == "vpc-0aaa"
    assert {i.inputs["subnetId"] for i in h.mocks.of_type("aws:ec2/instance:Instance")} == {
        "subnet-0123abcd"
    }
