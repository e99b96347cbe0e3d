from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from runner.plan import inventory_source as src
from tests.runner.inventories import PRIVATE_KEY, inventory_dict

FAKE_PULUMI = f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(" ".join(args) + "\\n")
if os.environ.get("FAKE_FAIL"):
    print("error: no stack named 'sim' found", file=sys.stderr)
    sys.exit(255)
if args == ["version"]:
    print("v3.200.0")
    sys.exit(0)
if os.environ.get("FAKE_ONLY_CLI") and "--show-secrets" not in args:
    print("automation API not wanted here", file=sys.stderr)
    sys.exit(3)
args = [a for a in args if a != "--non-interactive"]
if args[:2] == ["stack", "select"]:
    sys.exit(0)
if args[:2] == ["stack", "output"]:
    outs = json.load(open(os.environ["FAKE_OUTPUTS"]))
    secret = set(json.loads(os.environ.get("FAKE_SECRETS", "[]")))
    if "--show-secrets" not in args:
        outs = {{k: ("[secret]" if k in secret else v) for k, v in outs.items()}}
    print(json.dumps(outs))
    sys.exit(0)
print("unknown command", args, file=sys.stderr)
sys.exit(2)
"""


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pulumi"
    exe.write_text(FAKE_PULUMI)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"inventory": inventory_dict(), "region": "here"}))
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_OUTPUTS", str(outputs))
    monkeypatch.setenv("FAKE_SECRETS", '["inventory"]')
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    return outputs, log


def test_automation_api_reads_the_secret_output(fake_pulumi, tmp_path: Path) -> None:
    _, log = fake_pulumi
    inv = src.load_inventory(stack="sim", work_dir=tmp_path, timeout=30)
    assert [s.name for s in inv.sites] == ["alpha", "beta", "gamma"]
    key = inv.sites[0].ssh.private_key  # type: ignore[union-attr]
    assert key is not None and key.get_secret_value() == PRIVATE_KEY
    assert inv.credentials["alpha@example.org"].get_secret_value() == "pw-alpha-s3cret"
    calls = log.read_text()
    assert "stack select --stack sim" in calls
    assert "--show-secrets" in calls


def test_cli_fallback_when_automation_fails(fake_pulumi, tmp_path, monkeypatch) -> None:
    _, log = fake_pulumi
    monkeypatch.setenv("FAKE_ONLY_CLI", "1")
    inv = src.load_inventory(stack="sim", work_dir=tmp_path, timeout=30)
    assert inv.coordinator.name == "alpha"
    assert log.read_text().splitlines()[-1] == (
        "--non-interactive stack output --json --show-secrets --stack sim"
    )


def test_inventory_as_json_text_output(fake_pulumi, tmp_path) -> None:
    outputs, _ = fake_pulumi
    outputs.write_text(json.dumps({"inventory": json.dumps(inventory_dict())}))
    assert src.load_inventory(stack="sim", work_dir=tmp_path).stack == "sim"


def test_stack_errors_are_one_line(fake_pulumi, tmp_path, monkeypatch) -> None:
    outputs, _ = fake_pulumi
    outputs.write_text(json.dumps({"region": "here"}))
    with pytest.raises(src.InventorySourceError, match=r"no output 'inventory'.*pulumi up"):
        src.load_inventory(stack="sim", work_dir=tmp_path)
    monkeypatch.setenv("FAKE_FAIL", "1")
    with pytest.raises(src.InventorySourceError) as info:
        src.load_inventory(stack="sim", work_dir=tmp_path)
    assert str(info.value) == "pulumi could not read stack 'sim': error: no stack named 'sim' found"


def test_no_pulumi_cli_points_to_inventory(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(src.InventorySourceError) as info:
        src.load_inventory(stack="sim")
    message = str(info.value)
    assert "no Pulumi CLI" in message and "--inventory FILE" in message and "\n" not in message


def test_inventory_file_plain_or_saved_outputs(tmp_path: Path) -> None:
    plain = tmp_path / "inv.json"
    plain.write_text(json.dumps(inventory_dict()))
    assert len(src.load_inventory(inventory_file=plain).sites) == 3
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps({"inventory": inventory_dict(), "x": 1}))
    assert len(src.load_inventory(inventory_file=saved, stack="ignored").sites) == 3


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(src.InventorySourceError, match="inventory file not found"):
        src.load_inventory(inventory_file=tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(src.InventorySourceError, match=r"not JSON \(line 1"):
        src.load_inventory(inventory_file=bad)
    with pytest.raises(src.InventorySourceError, match="give --stack NAME or --inventory FILE"):
        src.load_inventory()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(version=9), "inventory field version: inventory version 9"),
        (lambda d: d["sites"][1].pop("fc_user"), "field sites[1](beta).fc_user: Field required"),
        (
            lambda d: d["sites"][2]["ssh"].update(host_keys=["nonsense"]),
            "field sites[2](gamma).ssh.host_keys: not an OpenSSH public host key",
        ),
        (lambda d: d["sites"][0].update(role="participant"), "exactly one site must coordinate"),
        (
            lambda d: d["sites"][0]["ssh"].update(private_key_file="/k"),
            "sites[0](alpha).ssh: give exactly one of private_key and private_key_file",
        ),
    ],
)
def test_validation_names_the_field_never_the_secret(tmp_path, mutate, expected) -> None:
    data = inventory_dict()
    mutate(data)
    path = tmp_path / "inv.json"
    path.write_text(json.dumps(data))
    with pytest.raises(src.InventorySourceError) as info:
        src.load_inventory(inventory_file=path)
    message = str(info.value)
    assert expected in message, message
    assert "\n" not in message
    assert "secret-key-material" not in message and "s3cret" not in message


def test_a_hanging_pulumi_times_out_in_one_line(fake_pulumi, tmp_path, monkeypatch) -> None:
    slow = tmp_path / "bin" / "pulumi"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(3)\n")
    with pytest.raises(src.InventorySourceError, match=r"did not answer within 0.5 s"):
        src.load_inventory(stack="sim", work_dir=tmp_path, timeout=0.5)
