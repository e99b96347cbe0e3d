"""Running fedinfra under the Pulumi SDK's mocks, without a CLI or provider plugins.

- `FedMocks` returns what the real providers compute (domain addresses, tls keys as secrets,
  instance public IPs, CloudInitDisk ids, command stdout), or downstream inputs silently come
  out empty and the tests prove nothing.
- `RecordingMonitor` keeps every RegisterResourceRequest, for the options the mocks do not see
  (parent, dependencies, custom timeouts, replaceOnChanges).
- `stack_config` turns Pulumi.yaml defaults + Pulumi.<stack>.yaml into the flat string map the
  CLI hands the program.
- `run_program` waits for every registration before the test asserts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc

ROOT = Path(__file__).resolve().parents[2]


def secret(value: Any) -> dict[str, Any]:
    """A provider output the engine would mark secret."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def is_secret_wrapper(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def ed25519_pair() -> tuple[str, str]:
    """A real OpenSSH ED25519 key pair (private, public), as tls.PrivateKey returns them."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public + "\n"


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    provider: str
    custom: bool
    id: str


class FedMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Registered] = []
        self.calls: list[pmocks.MockCallArgs] = []
        self._ip = 10
        self.keys: dict[str, tuple[str, str]] = {}

    def new_resource(self, args: pmocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        rid = f"{args.name}-id"
        if args.typ == "tls:index/privateKey:PrivateKey":
            private, public = ed25519_pair()
            self.keys[args.name] = (private, public)
            outputs |= {"privateKeyOpenssh": secret(private), "publicKeyOpenssh": public}
        elif args.typ == "libvirt:index/domain:Domain":
            self._ip += 1
            nics = [dict(n) for n in args.inputs.get("networkInterfaces", [])]
            nics[0]["addresses"] = [f"10.77.0.{self._ip}"]
            outputs["networkInterfaces"] = nics
            rid = f"uuid-{args.name}"
        elif args.typ == "libvirt:index/volume:Volume":
            rid = f"/var/lib/libvirt/images/{args.inputs.get('name', args.name)}"
        elif args.typ == "libvirt:index/cloudInitDisk:CloudInitDisk":
            rid = f"/var/lib/libvirt/images/{args.inputs['name']};0b5f-{args.name}"
        elif args.typ == "aws:ec2/instance:Instance":
            self._ip += 1
            outputs |= {"publicIp": f"203.0.113.{self._ip}", "privateIp": f"172.31.0.{self._ip}"}
            rid = f"i-{self._ip:017x}"
        elif args.typ == "aws:ec2/keyPair:KeyPair":
            outputs["keyName"] = args.inputs.get("keyNamePrefix", "") + "0001"
        elif args.typ == "aws:ec2/securityGroup:SecurityGroup":
            rid = "sg-0123456789abcdef0"
        elif args.typ == "command:remote:Command":
            create = str(args.inputs.get("create", ""))
            outputs["stdout"] = (
                "fedstack-provision: changed: nothing"
                if create == "bash -s"
                else "fedstack-ready Linux x86_64"
            )
            outputs["stderr"] = ""
        self.resources.append(
            Registered(
                args.typ,
                args.name,
                dict(args.inputs),
                outputs,
                args.provider or "",
                bool(args.custom),
                rid,
            )
        )
        return rid, outputs

    def call(  # type: ignore[override]  # pulumi also accepts a bare dict of outputs
        self, args: pmocks.MockCallArgs
    ) -> tuple[dict[str, Any], list[Any]] | dict[str, Any]:
        self.calls.append(args)
        if args.token == "aws:ec2/getAmi:getAmi":
            return {"id": "ami-0abcdef1234567890", "architecture": "x86_64", "name": "ubuntu-noble"}
        if args.token == "aws:ec2/getSubnet:getSubnet":
            return {"id": args.args.get("id"), "vpcId": "vpc-0aaa"}
        if args.token == "aws:ec2/getVpc:getVpc":
            return {"id": "vpc-0default"}
        return {}

    # queries used by the tests
    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, name: str) -> Registered:
        (found,) = [r for r in self.resources if r.name == name]
        return found


class RecordingMonitor(pmocks.MockMonitor):
    """Keeps each registration request: options are only visible here."""

    def __init__(self, mocks: FedMocks) -> None:
        super().__init__(mocks)
        self.requests: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.requests[request.name] = request
        return super().RegisterResource(request)


@dataclass
class Harness:
    mocks: FedMocks
    monitor: RecordingMonitor
    exports: dict[str, Any] = field(default_factory=dict)

    def request(self, name: str) -> Any:
        return self.monitor.requests[name]

    def urn_of(self, name: str) -> str:
        (urn,) = [u for u in self.monitor.resources if u.endswith("::" + name)]
        return urn


def _flat(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def stack_config(stack: str, project_dir: Path = ROOT) -> tuple[dict[str, str], list[str]]:
    """(flat config, secret keys) as the CLI would pass them for `pulumi up -s <stack>`."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    name = project["name"]
    flat: dict[str, str] = {}
    for key, decl in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(decl, dict) and "default" in decl:
            flat[full] = _flat(decl["default"])
        elif not isinstance(decl, dict):
            flat[full] = _flat(decl)
    stack_file = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text())
    secrets: list[str] = []
    for key, value in (stack_file.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            flat[key] = "placeholder-secret"
            secrets.append(key)
        else:
            flat[key] = _flat(value)
    return flat, secrets


def _ensure_event_loop() -> None:
    """Give the main thread an open event loop: the mocks schedule their work on it.

    pytest-asyncio closes and unsets its loop after every async test, so a stack test run
    after one would otherwise find none ("There is no current event loop").
    """
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        asyncio.set_event_loop(asyncio.new_event_loop())


def setup(stack: str, config: dict[str, str], secret_keys: list[str] | None = None) -> Harness:
    _ensure_event_loop()
    mocks = FedMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="fedstack", stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config, secret_keys or [])
    return Harness(mocks, monitor)


def run_program(fn: Callable[[], Any]) -> Any:
    """Run fn under the mocks and wait until every resource has registered."""
    box: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def _run() -> None:
        box["result"] = fn()

    _run()
    return box.get("result")


def resolve(output: Any) -> tuple[Any, bool, bool]:
    """(value, is_secret, is_known) of an Output."""
    box: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def _run() -> Any:
        async def go() -> None:
            out = pulumi.Output.from_input(output)
            box["value"] = await out.future(with_unknowns=True)
            box["secret"] = await out.is_secret()
            box["known"] = await out.is_known()

        return pulumi.Output.from_input(go())

    _run()
    return box["value"], box["secret"], box["known"]


def fake_home(tmp: Path) -> Path:
    """A HOME with the key file the committed cloud stack names (set HOME to `tmp` yourself,
    with monkeypatch, so `~` resolves to it)."""
    ssh = tmp / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    private, _ = ed25519_pair()
    key = ssh / "fedstack_partner_ed25519"
    key.write_text(private)
    key.chmod(0o600)
    return key


__all__ = [
    "ROOT",
    "FedMocks",
    "Harness",
    "RecordingMonitor",
    "ed25519_pair",
    "fake_home",
    "is_secret_wrapper",
    "resolve",
    "run_program",
    "secret",
    "setup",
    "stack_config",
]
