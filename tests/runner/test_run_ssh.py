"""The runner end to end over real SSH: three OpenSSH hosts in network namespaces, each running
the emulator's controller on its own localhost:8000, the emulated website on the runner's side.

These are the runs a researcher depends on: the right answer from every site, results and
report on disk, no secret anywhere in them, and clear failures when a host is not the one
pinned or dies during the run.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import cast

import httpx
import numpy as np
import pytest

from fcapi.emulator.serve import running_site
from runner.api import execute
from runner.demo_data import CHECK_MEAN
from runner.errors import EXIT_SITES_FAILED, RunFailed
from tests.runner.federation import build, outputs, secrets_of
from tests.testhosts import NetnsHost

pytestmark = pytest.mark.netns


async def test_mean_over_ssh_with_host_resident_data(three_hosts: list[NetnsHost], tmp_path: Path):
    async with running_site(host=three_hosts[0].runner_address) as web:
        fed = await build(tmp_path, web.url, hosts=three_hosts, host_data=(1,))
        outcome = await execute(fed.inventory, fed.workflow(), fed.passwords, website_url=web.url)
    assert outcome.code == 0, outcome.summary
    means = {
        site: text.split()[-1] for site, text in outputs(outcome.run_dir, "output.csv").items()
    }
    assert means == {"site1": CHECK_MEAN, "site2": CHECK_MEAN, "site3": CHECK_MEAN}

    # site2's data never came through the runner: it was uploaded by its host
    metrics = json.loads((outcome.run_dir / "metrics.json").read_text())
    site2 = next(s for s in metrics["sites"] if s["name"] == "site2")
    assert site2["bytes_uploaded_on_host"] == len(fed.site_data["site2"])
    assert metrics["status"] == "completed"
    assert metrics["bytes_moved"]["uploaded_on_hosts"] == len(fed.site_data["site2"])

    # every file in the run dir is in the manifest with its size and digest
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    assert {
        "metrics.json",
        "report.html",
        "inputs/workflow.toml",
        "inputs/inventory.json",
    } <= listed
    assert (outcome.run_dir / "inputs/workflow.toml").read_text() == fed.workflow_file.read_text()
    assert any(p.endswith("output.csv") for p in listed)
    # the controllers were stopped: nothing listens on the hosts' localhost:8000 any more
    for host in three_hosts:
        probe = host.exec("python3", "-c", _PORT_OPEN)
        assert probe.stdout.strip() == "closed", host.namespace

    text = "".join(p.read_text(errors="replace") for p in outcome.run_dir.rglob("*") if p.is_file())
    for secret in secrets_of(fed):
        assert secret not in text


_PORT_OPEN = (
    "import socket\ns = socket.socket()\ns.settimeout(1)\n"
    "print('open' if s.connect_ex(('127.0.0.1', 8000)) == 0 else 'closed')"
)


async def test_regression_over_ssh_equals_the_pooled_fit(
    three_hosts: list[NetnsHost], tmp_path: Path
):
    async with running_site(host=three_hosts[0].runner_address) as web:
        fed = await build(tmp_path, web.url, hosts=three_hosts, app="linear-regression")
        outcome = await execute(fed.inventory, fed.workflow(), fed.passwords, website_url=web.url)
    assert outcome.code == 0, outcome.summary

    rows = [
        [float(c) for c in line.split(",")]
        for data in fed.site_data.values()
        for line in data.splitlines()[1:]
    ]
    pooled = np.asarray(rows)
    x = np.hstack([np.ones((len(pooled), 1)), pooled[:, :2]])
    expected, *_ = np.linalg.lstsq(x, pooled[:, 2], rcond=None)
    results = outputs(outcome.run_dir, "coefficients.csv")
    assert set(results) == {"site1", "site2", "site3"}
    for site, text in results.items():
        coef = [float(line.split(",")[1]) for line in text.splitlines()[1:]]
        assert np.allclose(coef, expected, rtol=0, atol=1e-9), site


async def test_a_host_showing_another_key_is_refused_before_any_project(
    three_hosts: list[NetnsHost], tmp_path: Path
):
    stranger = three_hosts[0].host_key  # site3 pins site1's key: not the key site3 shows
    async with running_site(host=three_hosts[0].runner_address) as web:
        fed = await build(tmp_path, web.url, hosts=three_hosts, host_keys={2: [stranger]})
        # the preflight's `reachable` check refuses it, before the run folder and the project
        with pytest.raises(RunFailed) as caught:
            await execute(fed.inventory, fed.workflow(), fed.passwords, website_url=web.url)
        projects = await fed.projects()
    assert caught.value.exit_code == EXIT_SITES_FAILED
    failure = str(caught.value)
    assert failure.startswith("site site3: reachable: ")
    assert "host key" in failure.lower() and three_hosts[2].address in failure
    assert projects == []  # refused before the project was created
    assert not fed.outdir.exists()


async def test_a_site_that_dies_mid_run_is_named_and_the_others_keep_their_logs(
    three_hosts: list[NetnsHost], tmp_path: Path
):
    async with running_site(host=three_hosts[0].runner_address) as web:
        fed = await build(tmp_path, web.url, hosts=three_hosts, deadline="40s")
        async with httpx.AsyncClient() as client:
            r = await client.put(f"{web.url}/_emulator/faults", json={"die_mid_run": "site3"})
            r.raise_for_status()
        outcome = await asyncio.wait_for(
            execute(fed.inventory, fed.workflow(), fed.passwords, website_url=web.url), 120
        )
    assert outcome.code != 0
    failures = cast(dict[str, str], outcome.summary["failures"])
    assert "stopped answering" in failures.get("site3", ""), failures
    assert "site1" not in failures and "site2" not in failures
    logs = list(outcome.run_dir.glob("sites/site1/run*/log_step*.txt"))
    assert logs, "the coordinator's logs were not kept"
