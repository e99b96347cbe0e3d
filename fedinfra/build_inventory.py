"""Build the `inventory` export from plain values, validated by fedinfra.inventory.

Called inside an apply once every address and key is known, so the stack can never export an
inventory the runner would refuse. Pure: no Pulumi here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from fedinfra.inventory import (
    INVENTORY_VERSION,
    ControllerSpec,
    Inventory,
    SiteEntry,
    SshAccess,
)


@dataclass(frozen=True)
class JumpFacts:
    """The host a site is reached through (one hop), its key pinned, its login key a file."""

    address: str
    port: int
    user: str
    host_key: str
    private_key_file: str


@dataclass(frozen=True)
class HostFacts:
    """What the stack knows about one site's host once it is up."""

    name: str
    fc_user: str
    coordinator: bool
    address: str
    port: int
    user: str
    host_keys: tuple[str, ...]
    workdir: str
    #: the key text (machines the stack made) or a file on the runner's machine (BYO hosts)
    private_key: str | None = None
    private_key_file: str | None = None
    jump: JumpFacts | None = None
    #: `host`: the site's password stays in `password_file` on its host (spec's `credentials`)
    credentials: str = "runner"
    password_file: str | None = None


def _jump_access(jump: JumpFacts | None) -> SshAccess | None:
    if jump is None:
        return None
    return SshAccess(
        address=jump.address,
        port=jump.port,
        user=jump.user,
        private_key_file=jump.private_key_file,
        host_keys=[jump.host_key.strip()],
    )


def controller_for(workdir: str, *, name: str, port: int) -> ControllerSpec:
    """The controller keeps its data under fedstack's workdir, so cleanup takes it along."""
    return ControllerSpec(name=name, port=port, data_dir=f"{workdir.rstrip('/')}/controller-data")


def build_inventory(
    *,
    stack: str,
    hosts: Sequence[HostFacts],
    passwords: Mapping[str, str] | None,
    controller_name: str,
    controller_port: int,
) -> Inventory:
    """The validated inventory; raises ValueError naming the problem (e.g. a password for a
    user no site has).

    A host-held site's password, which only that site's own stack may hold, is written to its
    host by provisioning (`held_password`) and never exported.
    """
    known_users = {h.fc_user for h in hosts}
    stray = sorted(set(passwords or {}) - known_users)
    if stray:
        raise ValueError(f"fcPasswords has users no site uses: {', '.join(stray)}")
    held = {h.fc_user for h in hosts if h.credentials == "host"}
    sites = [
        SiteEntry(
            name=h.name,
            fc_user=h.fc_user,
            role="coordinator" if h.coordinator else "participant",
            transport="ssh",
            ssh=SshAccess(
                address=h.address,
                port=h.port,
                user=h.user,
                private_key=SecretStr(h.private_key) if h.private_key is not None else None,
                private_key_file=h.private_key_file,
                host_keys=[k.strip() for k in h.host_keys],
                jump=_jump_access(h.jump),
            ),
            workdir=h.workdir,
            controller=controller_for(h.workdir, name=controller_name, port=controller_port),
            credentials=h.credentials,
            password_file=h.password_file,
        )
        for h in hosts
    ]
    return Inventory(
        version=INVENTORY_VERSION,
        stack=stack,
        sites=sites,
        credentials={u: SecretStr(p) for u, p in (passwords or {}).items() if u not in held},
    )


def held_password(
    credentials: str, fc_user: str, passwords: Mapping[str, str] | None
) -> str | None:
    """The password provisioning writes into a host-held site's password file: only when
    this stack holds it (the site's own stack); otherwise None, and the site's admin puts the
    file there."""
    if credentials != "host":
        return None
    return (passwords or {}).get(fc_user)


def export_inventory(inventory: Inventory) -> dict[str, object]:
    """The export's value: the model's JSON with secrets revealed (the Output holding it is
    secret, so Pulumi encrypts it in state and masks it in `pulumi stack output`)."""
    return inventory.to_json_dict(reveal_secrets=True)


def public_view(inventory: Inventory) -> list[dict[str, object]]:
    """A secret-free summary (`pulumi stack output sites`) for checking a stack after `up`."""
    return [
        {
            "name": s.name,
            "role": s.role,
            "fc_user": s.fc_user,
            "address": s.ssh.address if s.ssh else None,
            "port": s.ssh.port if s.ssh else None,
            "user": s.ssh.user if s.ssh else None,
            "host_keys": list(s.ssh.host_keys) if s.ssh else [],
            "jump": _jump_view(s.ssh.jump if s.ssh else None),
            "workdir": s.workdir,
        }
        for s in inventory.sites
    ]


def _jump_view(jump: SshAccess | None) -> dict[str, object] | None:
    """The jump as the public view shows it: where, who, which key is pinned (no key file)."""
    if jump is None:
        return None
    return {
        "address": jump.address,
        "port": jump.port,
        "user": jump.user,
        "host_keys": list(jump.host_keys),
    }
