"""A run's provenance: the software, the inputs by sha256, and each site's machine.

A result is only worth what can be said about how it was made. At the start of a new run
(after the preflight, whose probe already asked every host what it is and hashed its
host-resident data there: runner.plan.checks.host) this is written once as
`provenance.json` in the run folder; a resume keeps it, and every output reads it from there
(metrics.json's `provenance`, the report's block, the RO-Crate).
"""

from __future__ import annotations

import asyncio
import json
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from fcapi.errors import FcError
from fcapi.files import sha256_file, write_atomic
from fcapi.website import WebsitePool
from fedinfra.inventory import Inventory, SiteEntry
from runner.outputs.events import utc_stamp
from runner.plan.checks.runtime import start_program
from runner.plan.checks.sites import Readiness
from runner.plan.workflow import Workflow

PROVENANCE_FILE = "provenance.json"
#: what the `host` check reports that belongs to a site's record (the rest is per file)
_HOST_FACTS = ("os", "kernel", "arch", "cpus", "cpu_model", "memory_kib", "docker", "controller")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def software() -> dict[str, Any]:
    """The runner's own software: fedstack, its Python and the machine it ran on."""
    return {
        "fedstack": _version("fedstack"),
        "python": platform.python_version(),
        "runner_os": f"{platform.system()} {platform.release()}",
        "runner_machine": platform.machine(),
        "executable": sys.executable,
    }


async def app_record(
    pool: WebsitePool, inventory: Inventory, workflow: Workflow
) -> list[dict[str, Any]]:
    """The app as the website lists it (id, slug, name, version if it says one)."""
    if workflow.app is None:
        return []
    try:
        app = await pool.client(inventory.coordinator.fc_user).app_by_slug(workflow.app)
    except FcError as exc:
        return [{"slug": workflow.app, "id": None, "error": str(exc)}]
    listed = app.model_dump(mode="json")
    return [{"version": listed.pop("version", None), **listed}]


def controller_kind(site: SiteEntry) -> str:
    """What the start command runs: FeatureCloud's controller, fcapi's emulator, or a program."""
    command = site.controller.start_command
    if "fcapi.emulator" in command:
        return f"fcapi emulator (fedstack {_version('fedstack')})"
    return start_program(command) or "unknown"


def site_record(site: SiteEntry, readiness: Readiness) -> dict[str, Any]:
    facts = readiness.data(site.name, "host")
    record: dict[str, Any] = {
        "transport": site.transport,
        "host": site.host(),
        "controller_start": controller_kind(site),
        "controller_port": site.controller.port,
    }
    record.update({k: facts.get(k) for k in _HOST_FACTS})
    record["image"] = facts.get("image")
    record["image_digest"] = facts.get("image_digest")
    return record


def data_records(workflow: Workflow, readiness: Readiness) -> list[dict[str, Any]]:
    """Every data file a site gives the run, by sha256: local ones here, host ones on the host."""
    records: list[dict[str, Any]] = []
    for name, plan in workflow.sites.items():
        for local in plan.local:
            digest = sha256_file(local.path)
            records.append(
                {
                    "site": name,
                    "where": "runner",
                    "path": str(local.path),
                    "as": local.name,
                    "size": local.size,
                    "sha256": digest,
                }
            )
        hashes = readiness.data(name, "host").get("host_files")
        on_host = hashes if isinstance(hashes, dict) else {}
        for ref in plan.host:
            records.append(
                {
                    "site": name,
                    "where": "host",
                    "path": ref.path,
                    "as": ref.name,
                    "sha256": on_host.get(ref.path),
                }
            )
    return records


def build_provenance(
    inventory: Inventory,
    workflow: Workflow,
    readiness: Readiness,
    apps: list[dict[str, Any]],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    configs = []
    if workflow.config is not None:
        configs.append({"path": str(workflow.config), "sha256": sha256_file(workflow.config)})
    return {
        "recorded_at": utc_stamp(now or datetime.now(UTC)),
        "software": software(),
        "apps": apps,
        "workflow": {"path": str(workflow.source), "sha256": sha256_file(workflow.source)},
        "configs": configs,
        "data": data_records(workflow, readiness),
        "sites": {s.name: site_record(s, readiness) for s in inventory.sites},
    }


async def record_provenance(
    run_dir: Path, inventory: Inventory, workflow: Workflow, readiness: Readiness, pool: WebsitePool
) -> None:
    """Write the new run's provenance.json (the website asked once more, for the app)."""
    apps = await app_record(pool, inventory, workflow)
    data = await asyncio.to_thread(build_provenance, inventory, workflow, readiness, apps)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    await asyncio.to_thread(write_atomic, run_dir / PROVENANCE_FILE, text)


def load_provenance(run_dir: Path) -> dict[str, Any] | None:
    """The run's provenance, or None for a run that has none (one from before it existed)."""
    path = run_dir / PROVENANCE_FILE
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded
