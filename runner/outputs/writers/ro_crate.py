"""ro-crate-metadata.json: the run folder as an RO-Crate, for archives and workflow registries.

An RO-Crate is the research world's shared way of saying what a folder holds and how it was
made, so a run can be deposited or compared with runs of other tools (flwrcrate does this for
Flower). The crate describes the folder (the root dataset), its inputs (the kept workflow and
inventory here; the config and the sites' data files by path and sha256, host-resident ones
as hashed on their host), its outputs, and the software that ran (fedstack, the app as the
website names it, each site's controller) joined by one CreateAction. The `rocrate` package
builds the JSON-LD; it is imported here only, so a process that writes no crate never loads
it. Written before manifest.json, which then lists and hashes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fcapi.files import is_temp_name, write_atomic
from runner.outputs.writers.base import OutputContext, Writer

CRATE_FILE = "ro-crate-metadata.json"
#: never part of the crate: the checkpoint (0600, private), the manifest (written after it)
_LEFT_OUT = frozenset({"state.json", "manifest.json", CRATE_FILE})


def _run_files(run_dir: Path) -> list[str]:
    found = []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if path.is_file() and rel not in _LEFT_OUT and not is_temp_name(path.name):
            found.append(rel)
    return found


def _external_inputs(provenance: dict[str, Any]) -> list[dict[str, Any]]:
    """The inputs that live outside the folder: config and data, named by path and sha256."""
    entities = [
        {"@id": f"#config-{i}", "@type": "File", "name": f"config {c['path']}", **c}
        for i, c in enumerate(provenance.get("configs", []))
    ]
    for i, d in enumerate(provenance.get("data", [])):
        entities.append(
            {
                "@id": f"#data-{i}",
                "@type": "File",
                "name": f"{d['site']}: {d['path']} (as {d['as']}, on the {d['where']})",
                "path": d["path"],
                "sha256": d.get("sha256"),
                "site": d["site"],
            }
        )
    return entities


def _software(provenance: dict[str, Any]) -> list[dict[str, Any]]:
    soft = provenance.get("software", {})
    found: list[dict[str, Any]] = [
        {"@id": "#fedstack", "name": "fedstack", "version": soft.get("fedstack")},
        {"@id": "#python", "name": "Python", "version": soft.get("python")},
    ]
    for app in provenance.get("apps", []):
        found.append(
            {
                "@id": f"#app-{app['slug']}",
                "name": f"FeatureCloud app {app['slug']}",
                "identifier": str(app.get("id")),
                "version": app.get("version"),
            }
        )
    for name, site in provenance.get("sites", {}).items():
        controller = site.get("controller") or site.get("controller_start")
        image = site.get("image_digest") or site.get("image")
        found.append(
            {"@id": f"#controller-{name}", "name": f"controller of {name}: {controller}"}
            | ({"identifier": image} if image else {})
        )
    return found


def crate_document(context: OutputContext) -> dict[str, Any]:
    """The crate's JSON-LD, built with `rocrate`."""
    from rocrate.model.contextentity import ContextEntity
    from rocrate.model.softwareapplication import SoftwareApplication
    from rocrate.rocrate import ROCrate

    metrics, provenance = context.metrics, context.metrics.provenance or {}
    crate = ROCrate()
    crate.name = f"fedstack run {metrics.run_id}"
    crate.description = f"{metrics.app or 'a project'} across {len(metrics.sites)} sites"
    inputs: list[Any] = []
    outputs: list[Any] = []
    for rel in _run_files(context.run_dir):
        entity = crate.add_file(dest_path=rel, properties={"name": rel})
        (inputs if rel.startswith("inputs/") else outputs).append(entity)
    for record in _external_inputs(provenance):
        ident = record.pop("@id")
        inputs.append(crate.add(ContextEntity(crate, ident, properties=record)))
    software = []
    for record in _software(provenance):
        ident = record.pop("@id")
        props = {k: v for k, v in record.items() if v is not None}
        software.append(crate.add(SoftwareApplication(crate, ident, properties=props)))
    status = "CompletedActionStatus" if metrics.status == "completed" else "FailedActionStatus"
    crate.add_action(
        software[0],
        object=inputs,
        result=outputs,
        properties={
            "name": f"run {metrics.run_id}",
            "instrument": software,
            "startTime": metrics.started_at.isoformat(),
            "endTime": metrics.finished_at.isoformat(),
            "actionStatus": {"@id": f"http://schema.org/{status}"},
        },
    )
    document: dict[str, Any] = crate.metadata.generate()
    return document


class RoCrate(Writer):
    name = "ro_crate"
    file = CRATE_FILE

    def write(self, context: OutputContext) -> Path:
        path = self.path(context)
        write_atomic(path, json.dumps(crate_document(context), indent=2) + "\n")
        return path
