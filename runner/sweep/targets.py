"""Where a study's cells run: the embedded demo federation, kept for the study, or an inventory.

The demo's federation (an emulated website with its state file on a fixed port, accounts,
local sites) lives in `<study>/federation/` and is reopened by every invocation, because a
cell interrupted mid-run can only resume against the same website, project and sites. An
inventory's sites are the real thing; the sweep only picks from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from fcapi.credentials import load_passwords
from fcapi.files import write_atomic
from fedinfra.inventory import Inventory
from runner.demo import (
    build_federation,
    create_accounts,
    emulated_website,
    free_ports,
    stop_controllers,
)
from runner.errors import BadInput
from runner.plan.credentials import passwords_for_run
from runner.plan.inventory_source import load_inventory
from runner.sweep.study import Study, StudyError

FEDERATION = "federation"
META_FILE = "federation.json"


@dataclass
class Target:
    """The site pool of a study, its passwords and website."""

    inventory: Inventory
    passwords: dict[str, SecretStr]
    website_url: str
    #: the demo's site folders, whose controllers an interrupted sweep stops
    sites_dir: Path | None = None

    def cell_inventory(self, names: Sequence[str]) -> Inventory:
        """The inventory of a cell's sites, the first the coordinator."""
        by_name = {s.name: s for s in self.inventory.sites}
        sites = [
            by_name[n].model_copy(update={"role": "coordinator" if i == 0 else "participant"})
            for i, n in enumerate(names)
        ]
        return Inventory(version=self.inventory.version, stack=self.inventory.stack, sites=sites)

    def cell_passwords(self, names: Sequence[str]) -> dict[str, SecretStr]:
        users = {s.fc_user for s in self.inventory.sites if s.name in names}
        return {u: p for u, p in self.passwords.items() if u in users}

    def interrupted(self) -> None:
        """An interrupted demo stops its controllers; a real site's stay up for the resume."""
        if self.sites_dir is not None:
            stop_controllers(self.sites_dir)


@contextlib.asynccontextmanager
async def open_target(study: Study, size: int) -> AsyncIterator[Target]:
    """The study's target; the demo's is made on first use with `size` sites."""
    if study.inventory is None:
        async with demo_target(study.folder / FEDERATION, size) as target:
            yield target
        return
    assert study.spec.target is not None
    inventory = await asyncio.to_thread(load_inventory, inventory_file=study.inventory)
    if len(inventory.sites) < size:
        raise StudyError(
            f"{study.source}: key target.inventory: a cell needs {size} sites, "
            f"the inventory has {len(inventory.sites)}"
        )
    passwords = passwords_for_run(inventory, env_file=study.env_file)
    yield Target(inventory, passwords, study.spec.target.website_url)


@contextlib.asynccontextmanager
async def demo_target(folder: Path, size: int) -> AsyncIterator[Target]:
    meta_file = folder / META_FILE
    if not meta_file.is_file():  # never made, or its making was cut short: start over
        shutil.rmtree(folder, ignore_errors=True)
        await make_demo(folder, size)
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if meta["sites"] < size:
        raise BadInput(
            f"{folder}: the study's demo federation has {meta['sites']} sites, its cells now "
            f"need {size}; remove that folder to make a bigger one (unfinished cells start over)"
        )
    sites_dir = folder / "sites"
    inventory = Inventory.model_validate_json((sites_dir / "inventory.json").read_bytes())
    passwords = load_passwords(folder / ".env", environ={})
    async with website(folder, meta["port"]) as url:
        yield Target(inventory, passwords, url, sites_dir)


@contextlib.asynccontextmanager
async def website(folder: Path, port: int) -> AsyncIterator[str]:
    try:
        async with emulated_website(folder / "site-state.json", port=port) as url:
            yield url
    except RuntimeError as exc:
        raise BadInput(f"{folder}: the study's emulated website (port {port}): {exc}") from None


async def make_demo(folder: Path, size: int) -> None:
    """Accounts, local sites and the records to reopen them; `federation.json` comes last."""
    await asyncio.to_thread(folder.mkdir, parents=True)
    (port,) = free_ports(1)
    async with website(folder, port) as url:
        passwords = await create_accounts(url, size)
    env = "".join(f"{u}={p.get_secret_value()}\n" for u, p in passwords.items())
    write_atomic(folder / ".env", env, mode=0o600)
    await asyncio.to_thread(build_federation, url, passwords, folder / "sites", folder)
    write_atomic(folder / META_FILE, json.dumps({"port": port, "sites": size}) + "\n")
