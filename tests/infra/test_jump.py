"""Remote hypervisors are the jump host to their VMs (issue 10, "Remote hypervisors,
reachable"): under the SDK's mocks, provisioning of a VM on a `qemu+ssh://` hypervisor goes
through pulumi-command's `proxy` with both hops' host keys pinned, and the inventory carries the
hypervisor as the site's jump (its address, user, key file and pinned key) for the runner."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pydantic import ValidationError

from fedinfra.inventory import Inventory, SshAccess
from tests.infra.harness import (
    ROOT,
    ed25519_pair,
    fake_home,
    is_secret_wrapper,
    resolve,
    run_program,
    setup,
    stack_config,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HV_KEY = ed25519_pair()[1].strip()


def unwrap(value: Any) -> Any:
    return value["value"] if is_secret_wrapper(value) else value


def remote_sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **hv: Any) -> dict[str, str]:
    """The sim stack with alice on a remote hypervisor, bob and carol on the local one."""
    key = fake_home(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg, _ = stack_config("sim")
    remote = {
        "name": "hv1",
        "uri": f"qemu+ssh://me@hv1.example/system?keyfile={key}",
        "host_key": HV_KEY,
        "network_cidr": "10.78.0.0/24",
    } | hv
    cfg["fedstack:hypervisors"] = json.dumps(
        [{"name": "local", "uri": "qemu:///system"}, {k: v for k, v in remote.items() if v}]
    )
    sites = json.loads(cfg["fedstack:sites"])
    sites[0]["libvirt"]["hypervisor"] = "hv1"
    cfg["fedstack:sites"] = json.dumps(sites)
    return cfg


def run_main(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    exports: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exports.__setitem__(name, value))
    run_program(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))
    return exports


def test_vms_on_a_remote_hypervisor_are_reached_through_it(monkeypatch, tmp_path):
    h = setup("sim", remote_sim(tmp_path, monkeypatch))
    exports = run_main(monkeypatch)
    key_text = (tmp_path / ".ssh" / "fedstack_partner_ed25519").read_text()
    for step in ("ready", "provision"):
        conn = unwrap(h.mocks.named(f"alice-host-{step}").inputs["connection"])
        assert (
            conn["host"]
            == h.mocks.named("alice-vm").outputs["networkInterfaces"][0]["addresses"][0]
        )
        assert conn["hostKey"] == h.mocks.keys["alice-host-key"][1].strip()
        proxy = conn["proxy"]
        assert (proxy["host"], proxy["port"], proxy["user"]) == ("hv1.example", 22, "me")
        assert proxy["hostKey"] == HV_KEY and proxy["privateKey"] == key_text
        assert 0 < proxy["dialErrorLimit"] < 1000 and proxy["perDialTimeout"] > 0
        assert is_secret_wrapper(h.mocks.named(f"alice-host-{step}").inputs["connection"])
        # VMs on the local hypervisor are dialled directly
        assert "proxy" not in unwrap(h.mocks.named(f"bob-host-{step}").inputs["connection"])

    value, secret, _ = resolve(exports["inventory"])
    assert secret
    inventory = Inventory.model_validate(value)
    alice = inventory.site("alice").ssh
    assert alice is not None and alice.jump is not None
    jump = alice.jump
    assert (jump.address, jump.port, jump.user) == ("hv1.example", 22, "me")
    assert jump.host_keys == [HV_KEY] and jump.jump is None
    # the runner logs in to the jump with the key file the URI names, never a copy of it
    assert jump.private_key is None
    assert jump.private_key_file == str((tmp_path / ".ssh/fedstack_partner_ed25519").resolve())
    assert key_text not in json.dumps(value)
    bob = inventory.site("bob").ssh
    assert bob is not None and bob.jump is None

    view, view_secret, _ = resolve(exports["sites"])
    assert not view_secret
    by_name = {s["name"]: s for s in view}
    assert by_name["alice"]["jump"] == {
        "address": "hv1.example",
        "port": 22,
        "user": "me",
        "host_keys": [HV_KEY],
    }
    assert by_name["bob"]["jump"] is None


def test_a_missing_jump_key_file_is_one_line(monkeypatch, tmp_path):
    cfg = remote_sim(tmp_path, monkeypatch, uri="qemu+ssh://me@hv1.example/system?keyfile=/nope")
    setup("sim", cfg)
    with pytest.raises(pulumi.RunError) as info:
        run_main(monkeypatch)
    assert str(info.value) == (
        "hypervisor 'hv1': uri keyfile: cannot read /nope: No such file or directory"
    )


def test_a_remote_hypervisor_needs_its_host_key_pinned(monkeypatch, tmp_path):
    setup("sim", remote_sim(tmp_path, monkeypatch, host_key=None))
    with pytest.raises(pulumi.RunError) as info:
        run_main(monkeypatch)
    assert str(info.value).startswith(
        "hypervisor 'hv1': a qemu+ssh hypervisor needs host_key (`ssh-keyscan -t ed25519 HOST`)"
    )


def test_a_jump_is_one_hop_only():
    hop = {
        "address": "bastion.example",
        "user": "me",
        "private_key_file": "/k",
        "host_keys": [HV_KEY],
    }
    with pytest.raises(ValidationError, match="one hop only"):
        SshAccess.model_validate(hop | {"jump": hop | {"jump": hop}})
    assert SshAccess.model_validate(hop | {"jump": hop}).jump is not None


def test_a_cloud_site_behind_a_bastion_is_reached_through_it(monkeypatch, tmp_path):
    key = fake_home(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg, secret_keys = stack_config("cloud")
    cfg["fedstack:sshAllowedCidr"] = "10.0.0.5/32"  # the bastion's address inside the VPC
    sites = json.loads(cfg["fedstack:sites"])
    bastion = {"address": "198.51.100.20", "user": "jump", "key_file": str(key), "host_key": HV_KEY}
    sites[1]["aws"]["jump"] = bastion
    cfg["fedstack:sites"] = json.dumps(sites)
    h = setup("cloud", cfg, secret_keys)
    exports = run_main(monkeypatch)

    inst = h.mocks.named("hospital-b-vm")
    assert inst.inputs["associatePublicIpAddress"] is False
    assert h.mocks.named("hospital-a-vm").inputs["associatePublicIpAddress"] is True
    conn = unwrap(h.mocks.named("hospital-b-host-ready").inputs["connection"])
    assert conn["host"] == inst.outputs["privateIp"]
    proxy = conn["proxy"]
    assert (proxy["host"], proxy["user"], proxy["hostKey"]) == ("198.51.100.20", "jump", HV_KEY)
    assert "proxy" not in unwrap(h.mocks.named("hospital-a-host-ready").inputs["connection"])

    inventory = Inventory.model_validate(resolve(exports["inventory"])[0])
    b = inventory.site("hospital-b").ssh
    assert b is not None and b.address == inst.outputs["privateIp"] and b.jump is not None
    assert (b.jump.address, b.jump.user, b.jump.host_keys) == ("198.51.100.20", "jump", [HV_KEY])
    assert b.jump.private_key_file == str(key.resolve())


def test_the_same_address_behind_two_jumps_is_two_machines():
    """Two hypervisors' NAT networks hand out the same addresses: the inventory must not take
    two VMs for one machine (and refuse them as sharing a controller)."""

    def site(name: str, jump: str | None) -> dict[str, Any]:
        via = {"address": jump, "user": "me", "private_key_file": "/k", "host_keys": [HV_KEY]}
        ssh = {"address": "10.77.0.11", "user": "fedstack", "private_key": "k"}
        return {
            "name": name,
            "fc_user": f"{name}@x.org",
            "role": "coordinator" if name == "a" else "participant",
            "ssh": ssh | {"host_keys": [HV_KEY]} | ({"jump": via} if jump else {}),
            "workdir": "/srv/fedstack",
            "controller": {"data_dir": "/srv/fedstack/controller-data"},
        }

    ok = {"version": 1, "stack": "t", "sites": [site("a", "hv1"), site("b", "hv2")]}
    assert len(Inventory.model_validate(ok).sites) == 2
    same = {"version": 1, "stack": "t", "sites": [site("a", "hv1"), site("b", "hv1")]}
    with pytest.raises(ValidationError, match="share the controller address"):
        Inventory.model_validate(same)


def test_a_jump_key_text_survives_a_revealed_export():
    hop = {"address": "bastion.example", "user": "me", "private_key": "JUMP-KEY"}
    entry = {
        "name": "a",
        "fc_user": "a@x.org",
        "role": "coordinator",
        "ssh": {
            "address": "10.0.0.5",
            "user": "u",
            "private_key": "SITE-KEY",
            "host_keys": [HV_KEY],
            "jump": hop | {"host_keys": [HV_KEY]},
        },
        "workdir": "/srv/fedstack",
        "controller": {"data_dir": "/srv/fedstack/controller-data"},
    }
    inventory = Inventory.model_validate({"version": 1, "stack": "t", "sites": [entry]})
    revealed = inventory.to_json_dict(reveal_secrets=True)
    assert revealed["sites"][0]["ssh"]["jump"]["private_key"] == "JUMP-KEY"  # type: ignore[index]
    masked = json.dumps(inventory.to_json_dict())
    assert "JUMP-KEY" not in masked and "SITE-KEY" not in masked
