"""Provenance: what ran where, on what, in metrics.json, the report and an RO-Crate.

Someone reading a run years later relies on: the crate loads with `rocrate` and names the
folder's inputs, its outputs and the software that ran; every input's sha256 is the sha256
of what was used (a host-resident file's computed on its host, the data never moved); each
site's machine is named (OS, kernel, CPU, memory). A demo run and a run over the OpenSSH test
hosts show it.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import pytest
from rocrate.rocrate import ROCrate

from fcapi.emulator.serve import running_site
from fcapi.files import sha256_file
from runner.api import execute
from runner.demo import run_demo
from runner.demo_data import site_csv
from tests.runner.federation import build
from tests.testhosts import NetnsHost


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_a_demo_runs_folder_is_a_crate_naming_inputs_outputs_and_software(tmp_path: Path):
    outcome, means = await run_demo(3, tmp_path)
    assert outcome.code == 0 and len(means) == 3
    run_dir = outcome.run_dir
    crate = ROCrate(run_dir)  # loads ro-crate-metadata.json
    files = {e.id for e in crate.data_entities}
    assert {"inputs/workflow.toml", "inputs/inventory.json", "metrics.json", "report.html"} <= files
    assert {f"sites/site{i}/run1/step1/output.csv" for i in (1, 2, 3)} <= files
    assert "state.json" not in files  # the checkpoint is private
    software = {e["name"]: e for e in crate.get_by_type("SoftwareApplication")}
    assert software["fedstack"]["version"] == metadata.version("fedstack")
    assert software["FeatureCloud app mean-app"]["identifier"] == "66"  # as the website says
    assert {f"controller of site{i}: fcapi emulator" for i in (1, 2, 3)} <= {
        n.split(" (")[0] for n in software
    }
    (action,) = crate.get_by_type("CreateAction")
    used = {e.id for e in action["object"]}
    made = {e.id for e in action["result"]}
    assert "inputs/workflow.toml" in used and "metrics.json" in made
    data_inputs = [e for e in action["object"] if str(e.get("name", "")).startswith("site")]
    assert len(data_inputs) == 3

    provenance = json.loads((run_dir / "metrics.json").read_text())["provenance"]
    assert provenance["workflow"]["sha256"] == sha256_file(run_dir / "inputs" / "workflow.toml")
    assert provenance["apps"] == [
        {"description": "", "id": 66, "name": "Mean", "slug": "mean-app", "version": None}
    ]
    by_site = {d["site"]: d for d in provenance["data"]}
    assert {s: d["sha256"] for s, d in by_site.items()} == {
        f"site{i + 1}": sha(site_csv(i)) for i in range(3)
    }
    for site in provenance["sites"].values():
        assert site["kernel"] and site["os"] and site["cpus"] >= 1 and site["memory_kib"] > 0
    report = (run_dir / "report.html").read_text()
    assert "<h2>Provenance</h2>" in report and provenance["workflow"]["sha256"] in report
    assert sha(site_csv(1)) in report
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert "ro-crate-metadata.json" in {f["path"] for f in manifest["files"]}


@pytest.mark.netns
async def test_host_resident_data_is_hashed_on_its_host(
    three_hosts: list[NetnsHost], tmp_path: Path
):
    async with running_site(host=three_hosts[0].runner_address) as web:
        fed = await build(tmp_path, web.url, hosts=three_hosts, host_data=(1,))
        outcome = await execute(fed.inventory, fed.workflow(), fed.passwords, website_url=web.url)
    assert outcome.code == 0, outcome.summary["failures"]
    provenance = json.loads((outcome.run_dir / "metrics.json").read_text())["provenance"]
    (on_host,) = [d for d in provenance["data"] if d["where"] == "host"]
    assert on_host["site"] == "site2" and on_host["path"] == f"{three_hosts[1].workdir}/cohort.csv"
    assert on_host["sha256"] == sha(fed.site_data["site2"])
    site2 = provenance["sites"]["site2"]
    assert site2["host"] == f"{three_hosts[1].address}:22" and site2["transport"] == "ssh"
    assert site2["kernel"].startswith("Linux") and site2["memory_kib"] > 0
    crate = ROCrate(outcome.run_dir)
    hashed = {e.get("sha256") for e in crate.contextual_entities}
    assert sha(fed.site_data["site2"]) in hashed
