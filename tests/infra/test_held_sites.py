"""Host-held sites in the stack config, the inventory and provisioning (issue 11, item 1).

A site marked `credentials: host` keeps its FeatureCloud password in a file on its host: the
spec and the inventory say where, refuse what cannot work in one line, never carry the
password to the runner, and provisioning writes the file only from the site's own secret.
"""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from fedinfra.build_inventory import HostFacts, build_inventory, held_password
from fedinfra.inventory import INVENTORY_VERSION, Inventory, SiteEntry
from fedinfra.problems import one_line
from fedinfra.script import PROVISION_SCRIPT, load_script, provision_settings, render_stdin
from fedinfra.spec import SpecError, parse_spec
from tests.infra.harness import is_secret_wrapper, resolve, setup, stack_config
from tests.infra.test_spec import sim_spec
from tests.infra.test_stacks import run_main, unwrap

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _spec(**bob: Any) -> dict[str, Any]:
    raw = copy.deepcopy(sim_spec())
    raw["sites"][1].update(bob)
    return raw


def test_a_site_of_the_stack_config_may_keep_its_password_on_its_host():
    spec = parse_spec(_spec(credentials="host", password_file="/etc/fedstack/fc-password"))
    bob = spec.sites[1]
    assert (bob.credentials, bob.password_file) == ("host", "/etc/fedstack/fc-password")
    assert spec.sites[0].credentials == "runner"


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            {"credentials": "host"},
            "site 'bob': credentials host needs password_file (its path on the host)",
        ),
        (
            {"credentials": "host", "password_file": "fc-password"},
            "site 'bob': password_file: must be an absolute path",
        ),
        ({"password_file": "/etc/pw"}, "site 'bob': password_file is only for credentials host"),
        ({"credentials": "site"}, "site 'bob': credentials: Input should be 'runner' or 'host'"),
    ],
)
def test_a_wrong_held_site_in_the_stack_config_is_one_line(change: dict[str, str], line: str):
    with pytest.raises(SpecError) as caught:
        parse_spec(_spec(**change))
    assert str(caught.value).startswith(line), str(caught.value)


def test_a_host_held_coordinator_is_refused():
    raw = copy.deepcopy(sim_spec())
    raw["sites"][0].update(credentials="host", password_file="/etc/pw")
    with pytest.raises(SpecError, match="site 'alice': the coordinator must have credentials"):
        parse_spec(raw)


def _facts(name: str, *, coordinator: bool = False, **held: str) -> HostFacts:
    return HostFacts(
        name=name,
        fc_user=f"{name}@example.org",
        coordinator=coordinator,
        address=f"192.0.2.{len(name)}",
        port=22,
        user="fed",
        host_keys=(HOST_KEY,),
        workdir=f"/srv/fedstack-{name}",
        private_key_file="/k",
        **held,  # type: ignore[arg-type]
    )


def test_the_inventory_names_the_file_and_never_carries_the_held_password():
    hosts = [
        _facts("alice", coordinator=True),
        _facts("bob", credentials="host", password_file="/etc/fc-password"),
    ]
    passwords = {"alice@example.org": "pa", "bob@example.org": "pb"}
    inventory = build_inventory(
        stack="s", hosts=hosts, passwords=passwords, controller_name="fc", controller_port=8000
    )
    bob = inventory.site("bob")
    assert (bob.credentials, bob.password_file, bob.host_held) == ("host", "/etc/fc-password", True)
    assert bob.host_fcapi_python == "/srv/fedstack-bob/fcapi/bin/python"
    assert inventory.credentials == {"alice@example.org": SecretStr("pa")}
    assert "pb" not in str(inventory.to_json_dict(reveal_secrets=True))
    # ... but provisioning of bob's host may write it, from this (bob's own) stack
    assert held_password("host", "bob@example.org", passwords) == "pb"
    assert held_password("host", "bob@example.org", {"alice@example.org": "pa"}) is None
    assert held_password("runner", "alice@example.org", passwords) is None


def _site(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "fc_user": f"{name}@example.org",
        "role": "participant",
        "transport": "local",
        "workdir": f"/srv/{name}",
        "controller": {"data_dir": f"/srv/{name}/data"},
    } | fields


@pytest.mark.parametrize(
    ("site", "line"),
    [
        (
            _site("bob", credentials="host"),
            "site bob: credentials host needs password_file (its path on the host)",
        ),
        (
            _site("bob", password_file="/etc/pw"),
            "site bob: password_file is only for credentials host",
        ),
        (
            _site("bob", credentials="host", password_file="pw"),
            "password_file: must be an absolute path",
        ),
    ],
)
def test_a_wrong_held_site_in_the_inventory_is_one_line(site: dict[str, Any], line: str):
    with pytest.raises(ValidationError) as caught:
        SiteEntry.model_validate(site)
    assert line in one_line(caught.value, lambda p: ".".join(map(str, p.loc)))


def _inventory(coordinator: dict[str, Any], bob: dict[str, Any], **extra: Any) -> Inventory:
    alice = _site("alice", role="coordinator") | coordinator
    sites = [alice, _site("bob", controller={"data_dir": "/srv/bob/data", "port": 8001}) | bob]
    return Inventory.model_validate(
        {"version": INVENTORY_VERSION, "stack": "s", "sites": sites} | extra
    )


def test_the_inventory_refuses_a_held_coordinator_and_a_held_users_password():
    held = {"credentials": "host", "password_file": "/etc/pw"}
    with pytest.raises(ValidationError, match="site alice: the coordinator must have credentials"):
        _inventory(held, {})
    with pytest.raises(ValidationError, match="site bob: credentials hold a password for bob@"):
        _inventory({}, held, credentials={"bob@example.org": "pb"})
    assert _inventory({}, held).site("bob").host_held


def _provision(**settings: str) -> subprocess.CompletedProcess[str]:
    base = provision_settings(
        workdir="/srv/fedstack-test", fc_version="0.1.0", docker_required=False
    )
    stdin = render_stdin(base | settings, load_script(PROVISION_SCRIPT))
    return subprocess.run(
        ["bash", "-s"], input=stdin, capture_output=True, text=True, timeout=30, check=False
    )


def test_provisioning_refuses_a_held_password_it_cannot_place_before_changing_anything():
    done = _provision(FEDSTACK_FC_PASSWORD="s3cret-pw")
    assert done.returncode == 2
    assert "FEDSTACK_FC_PASSWORD is set but FEDSTACK_PASSWORD_FILE is not" in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout
    done = _provision(FEDSTACK_PASSWORD_FILE="fc-password")
    assert done.returncode == 2
    assert "FEDSTACK_PASSWORD_FILE must be an absolute path" in done.stderr


def test_provision_settings_carry_the_held_site_on_stdin_only():
    settings = provision_settings(
        workdir="/srv/f",
        fc_version="0.1.0",
        docker_required=True,
        fcapi_package="fedstack",
        password_file="/etc/fc-password",
        fc_password="pb",
    )
    assert settings["FEDSTACK_FCAPI_PACKAGE"] == "fedstack"
    assert settings["FEDSTACK_PASSWORD_FILE"] == "/etc/fc-password"
    assert settings["FEDSTACK_FC_PASSWORD"] == "pb"
    plain = provision_settings(workdir="/srv/f", fc_version="0.1.0", docker_required=True)
    assert not {k for k in plain if "PASSWORD" in k or "FCAPI" in k}


def test_a_runner_held_inventory_reads_as_before_and_a_held_one_round_trips():
    held = {"credentials": "host", "password_file": "/etc/pw"}
    inventory = _inventory({}, held)
    sites = inventory.to_json_dict()["sites"]
    assert isinstance(sites, list)
    alice, bob = sites
    assert not {"credentials", "password_file", "fcapi_python"} & set(alice)
    assert (bob["credentials"], bob["password_file"]) == ("host", "/etc/pw")
    assert Inventory.model_validate(inventory.to_json_dict()) == inventory


def _held_stack(monkeypatch: pytest.MonkeyPatch, passwords: dict[str, str]) -> Any:
    cfg, _ = stack_config("sim")
    sites = json.loads(cfg["fedstack:sites"])
    sites[1].update(credentials="host", password_file="/etc/fedstack/fc-password")
    cfg["fedstack:sites"] = json.dumps(sites)
    cfg["fedstack:fcPasswords"] = json.dumps(passwords)
    h = setup("sim", cfg, ["fedstack:fcPasswords"])
    return h, run_main(h, monkeypatch)


def test_a_stack_provisions_a_held_site_from_its_own_secret_and_exports_it_held(monkeypatch):
    bob = "bob@fedstack.example"
    h, exports = _held_stack(monkeypatch, {bob: "bobs-own-pw"})
    stdin = h.mocks.named("bob-host-provision").inputs["stdin"]
    assert is_secret_wrapper(stdin)
    text = unwrap(stdin)
    assert "export FEDSTACK_FCAPI_PACKAGE=fedstack" in text
    assert "export FEDSTACK_PASSWORD_FILE=/etc/fedstack/fc-password" in text
    assert "export FEDSTACK_FC_PASSWORD=bobs-own-pw" in text
    # nobody else's provisioning gets it, nor does any other input
    alice = unwrap(h.mocks.named("alice-host-provision").inputs["stdin"])
    assert "bobs-own-pw" not in alice
    assert "export FEDSTACK_FCAPI_PACKAGE" not in alice
    value, _, _ = resolve(exports["inventory"])
    inventory = Inventory.model_validate(value)
    assert inventory.site("bob").host_held
    assert inventory.site("bob").password_file == "/etc/fedstack/fc-password"
    assert bob not in inventory.credentials
    assert "bobs-own-pw" not in json.dumps(value)


def test_a_held_site_whose_password_the_stack_lacks_gets_fcapi_and_no_file(monkeypatch):
    h, exports = _held_stack(monkeypatch, {"alice@fedstack.example": "alices-pw"})
    text = unwrap(h.mocks.named("bob-host-provision").inputs["stdin"])
    assert "export FEDSTACK_FCAPI_PACKAGE=fedstack" in text
    assert "export FEDSTACK_FC_PASSWORD" not in text and "alices-pw" not in text
    value, _, _ = resolve(exports["inventory"])
    assert Inventory.model_validate(value).site("bob").host_held
