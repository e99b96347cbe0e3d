"""What `pulumi up -s sim` hands the libvirt provider and the provisioner for one site.

The committed sim stack runs under the Pulumi SDK's mocks (tests/infra/harness.py: real
ED25519 keys from the mocked tls provider), and the test reads the very inputs the
providers would get: the CloudInitDisk's user-data and meta-data (no network_config: the
provider then writes an empty network-config), the readiness gate's command, the
provisioning command and its stdin, and the inventory entry. Nothing is re-rendered by hand.
"""

from __future__ import annotations

import runpy
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from fedinfra.inventory import Inventory, SiteEntry
from tests.infra.harness import ROOT, is_secret_wrapper, resolve, run_program, setup, stack_config

STACK = "sim"


@dataclass(frozen=True)
class SiteSeed:
    """One sim site as fedinfra renders it."""

    site: str
    user_data: str
    meta_data: str
    #: what the provider writes when the component gives no network_config
    network_config: str
    host_public_key: str
    login_private_key: str
    login_public_key: str
    readiness_command: str
    provision_command: str
    provision_stdin: str
    entry: SiteEntry


def _unwrap(value: Any) -> Any:
    return value["value"] if is_secret_wrapper(value) else value


def render_site(site: str = "alice", *, secrets: dict[str, str] | None = None) -> SiteSeed:
    """Run the committed sim stack under mocks and pick `site`'s seed and commands.

    `secrets` sets secret stack keys as `pulumi config set --secret` would (the package index).
    """
    config, secret_keys = stack_config(STACK)
    config.update(secrets or {})
    harness = setup(STACK, config, [*secret_keys, *(secrets or {})])
    exports: dict[str, Any] = {}
    original = pulumi.export
    pulumi.export = lambda name, value: exports.__setitem__(name, value)
    try:
        run_program(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))
    finally:
        pulumi.export = original
    mocks = harness.mocks
    seed = mocks.named(f"{site}-seed").inputs
    ready = mocks.named(f"{site}-host-ready").inputs
    provision = mocks.named(f"{site}-host-provision").inputs
    value, _, _ = resolve(exports["inventory"])
    inventory = Inventory.model_validate(value)
    (entry,) = [s for s in inventory.sites if s.name == site]
    login_private, login_public = mocks.keys["login-key"]
    return SiteSeed(
        site=site,
        user_data=_unwrap(seed["userData"]),
        meta_data=_unwrap(seed["metaData"]),
        network_config=_unwrap(seed.get("networkConfig", "")) or "",
        host_public_key=mocks.keys[f"{site}-host-key"][1].strip(),
        login_private_key=login_private,
        login_public_key=login_public.strip(),
        readiness_command=_unwrap(ready["create"]),
        provision_command=_unwrap(provision["create"]),
        provision_stdin=_unwrap(provision["stdin"]),
        entry=entry,
    )


def seed_problems(seed: SiteSeed) -> list[str]:
    """What in a rendered seed would keep the runner out of the VM, one line each.

    The VM test checks its seed with this before booting, so that a seed that cannot work
    fails by name instead of as a login that times out minutes later.
    """
    doc = yaml.safe_load(seed.user_data) or {}
    problems = []
    host_key = (doc.get("ssh_keys") or {}).get("ed25519_public", "").strip()
    if host_key != seed.host_public_key:
        problems.append(
            f"host key: the seed installs {host_key[:40]!r}..., not the key the inventory pins "
            f"({seed.host_public_key[:40]!r}...)"
        )
    assert seed.entry.ssh is not None
    users = [u for u in doc.get("users") or [] if isinstance(u, dict)]
    login = [u for u in users if u.get("name") == seed.entry.ssh.user]
    keys = [str(k).strip() for u in login for k in u.get("ssh_authorized_keys") or [] if k]
    if seed.login_public_key not in keys:
        problems.append(
            f"user key: the seed gives user {seed.entry.ssh.user!r} no authorized key matching "
            "the inventory's login key"
        )
    return problems


def write_seed_iso(seed: SiteSeed, folder: Path) -> Path:
    """The cidata ISO as terraform-provider-libvirt 0.8.1 makes it (cloudinit_def.go).

    Its own invocation: `mkisofs -output ISO -volid cidata -joliet -rock user-data meta-data
    network-config`, with all three files written, network-config empty when not given.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("user-data", seed.user_data),
        ("meta-data", seed.meta_data),
        ("network-config", seed.network_config),
    ):
        (folder / name).write_text(text)
    iso = folder / "seed.iso"
    subprocess.run(
        [
            "mkisofs",
            "-output",
            str(iso),
            "-volid",
            "cidata",
            "-joliet",
            "-rock",
            "user-data",
            "meta-data",
            "network-config",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return iso
