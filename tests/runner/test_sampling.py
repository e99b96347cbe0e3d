"""Resource use per site: sampled during real runs, kept per site and phase, drawn in the report.

Local sites (this machine) and OpenSSH test hosts, against the emulated website; the interval
is short (0.5 s) so that a run of a few seconds has samples in several phases.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from fcapi.emulator.serve import running_site
from runner.api import execute
from runner.engine.checkpoint import PHASE_ORDER
from runner.engine.sampler import WAITING
from runner.outputs.resources import FIELDS, ResourceSample, site_resources
from runner.plan.workflow import WorkflowError, load_workflow
from runner.sites.shell import emulator_pid_file
from tests.runner.federation import Federation, build, local_federation
from tests.runner.inventories import make_inventory
from tests.testhosts import NetnsHost

TEST_DEADLINE = 120.0


def sample_every(fed: Federation, seconds: float) -> None:
    """The workflow's `sample_seconds` (a top-level key: before the first table)."""
    text = fed.workflow_file.read_text()
    fed.workflow_file.write_text(f"sample_seconds = {seconds}\n{text}")


async def run(fed: Federation) -> tuple[int, Path, dict[str, Any]]:
    outcome = await asyncio.wait_for(
        execute(fed.inventory, fed.workflow(), fed.passwords, website_url=fed.website_url),
        TEST_DEADLINE,
    )
    metrics = json.loads((outcome.run_dir / "metrics.json").read_text())
    return outcome.code, outcome.run_dir, metrics


def resources_of(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s["resources"] for s in metrics["sites"]}


def assert_plausible(res: dict[str, Any]) -> None:
    samples = res["samples"]
    assert res["interval_s"] == 0.5
    assert len(samples) >= 3, samples
    times = [s["t"] for s in samples]
    assert times == sorted(times) and times[0] >= 0
    for s in samples:
        assert 0 < s["mem_used_mib"] < s["mem_total_mib"]
        assert s["disk_free_mib"] > 0
        assert s["phase"] in (*PHASE_ORDER, WAITING)
    rates = samples[1:]  # the first sample has no interval to compute rates over
    assert all(0 <= s["cpu_pct"] <= 100 for s in rates if s["cpu_pct"] is not None)
    assert any(s["cpu_pct"] is not None for s in rates)
    assert all(s["net_rx_kib_s"] >= 0 and s["net_tx_kib_s"] >= 0 for s in rates)
    # the controller's own process was found through its pid file once it ran
    assert res["controller"] == "process"
    rss = [s["controller_rss_mib"] for s in samples if s["controller_rss_mib"] is not None]
    assert rss and all(10 < r < 2048 for r in rss)
    assert set(res["by_phase"]) == {s["phase"] for s in samples}
    for phase, stats in res["by_phase"].items():
        assert set(stats) == set(FIELDS)
        values = [s["mem_used_mib"] for s in samples if s["phase"] == phase]
        assert stats["mem_used_mib"]["max"] == pytest.approx(max(values), abs=0.01)


async def test_local_run_samples_every_site_in_its_phases(tmp_path: Path) -> None:
    async with local_federation(tmp_path, sites=3) as fed:
        sample_every(fed, 0.5)
        code, run_dir, metrics = await run(fed)
    assert code == 0, metrics.get("error")
    resources = resources_of(metrics)
    assert set(resources) == {"site1", "site2", "site3"}
    for res in resources.values():
        assert_plausible(res)
        assert res["misses"] == 0
    # a participant is sampled both in its own phases and while the project runs
    phases = {s["phase"] for s in resources["site2"]["samples"]}
    assert "connect" in phases or "controller" in phases, phases
    assert phases & {"watch", WAITING, "prepare"}, phases
    report = (run_dir / "report.html").read_text()
    for site in ("site1", "site2", "site3"):
        assert f'<figure class="resources" data-site="{site}">' in report
    assert report.count('data-series="host CPU %"') >= 3


async def test_a_run_shorter_than_the_interval_is_sampled_once_its_controllers_are_up(
    tmp_path: Path,
) -> None:
    """The first sample of a machine follows its controllers' start, not the next tick: with
    an interval far longer than the run, each site still has its one sample (before, none)."""
    async with local_federation(tmp_path, sites=2) as fed:
        sample_every(fed, 600)
        code, run_dir, metrics = await run(fed)
    assert code == 0, metrics.get("error")
    resources = resources_of(metrics)
    assert set(resources) == {"site1", "site2"}
    for res in resources.values():
        [sample] = res["samples"]  # one machine, sampled once for both of its sites
        assert 0 < sample["mem_used_mib"] < sample["mem_total_mib"]
        assert sample["controller_rss_mib"] is not None and res["controller"] == "process"
        assert res["misses"] == 0 and res["skipped"] == 0
    # one value is drawn as a dot: a line through one point would leave the chart blank
    report = (run_dir / "report.html").read_text()
    assert report.count('<circle class="series" data-series="memory used %"') == 2


#: what `df` does once site2's controller runs: answer nonsense, or hang
BROKEN_DF = {"nonsense": 'echo "df: broken"; exit 0', "hang": "exec sleep 60"}


@pytest.mark.parametrize("fault", sorted(BROKEN_DF))
async def test_a_host_whose_sample_fails_does_not_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """The host's samples miss (or hang and are skipped); the run ends ok and on time.

    Both local sites are this one machine, sampled by one line with one `df`: a df that fails
    fails the machine's sample, for both sites.
    """
    async with local_federation(tmp_path, sites=2) as fed:
        sample_every(fed, 0.5)
        site2 = fed.inventory.sites[1].controller
        fake = tmp_path / "bin"
        fake.mkdir()
        pid_file = emulator_pid_file(site2.data_dir, site2.name)
        real_df = next(
            p / "df" for p in map(Path, os.environ["PATH"].split(":")) if (p / "df").exists()
        )
        (fake / "df").write_text(
            f'#!/bin/sh\ncase " $* " in *" {site2.data_dir} "*)\n'
            f'  if [ -f "{pid_file}" ]; then {BROKEN_DF[fault]}; fi;;\nesac\n'
            f'exec {real_df} "$@"\n'
        )
        (fake / "df").chmod(0o755)
        monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
        code, run_dir, metrics = await run(fed)
    assert code == 0, metrics.get("error")
    assert metrics["status"] == "completed"
    res = resources_of(metrics)
    if fault == "nonsense":
        for site in ("site1", "site2"):
            assert res[site]["misses"] >= 1
            assert any("samples missed" in note for note in res[site]["notes"])
        assert "samples missed" in (run_dir / "report.html").read_text()
    else:
        # one sample hangs: later ticks skip it instead of piling up, and the run does not
        # wait for it (a sample may take 15 s: waiting for it would take the run past 20 s)
        for site in ("site1", "site2"):
            assert res[site]["skipped"] >= 3
            assert any("ticks skipped" in note for note in res[site]["notes"])
        assert metrics["counters"]["wall_seconds"] < 20


#: sends about 10 MB/s of UDP to the runner's address for `seconds` (the discard port: no
#: listener needed, the datagrams leave the host's eth0 all the same)
BLAST = (
    "import socket, sys, time\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "end = time.monotonic() + float(sys.argv[2])\n"
    "while time.monotonic() < end:\n"
    "    for _ in range(16):\n"
    "        try: s.sendto(bytes(60000), (sys.argv[1], 9))\n"
    "        except OSError: pass\n"
    "    time.sleep(0.1)\n"
)


@pytest.mark.netns
async def test_samples_over_ssh_come_from_the_host(netns_hosts: Any, tmp_path: Path) -> None:
    """Only site2's host sends a burst of traffic: only site2's samples may show it.

    The runner's own namespace holds both hosts' veth ends, so samples read there would show
    the burst for both sites; read on each host, they show it for site2 alone.
    """
    hosts: list[NetnsHost] = netns_hosts(2)
    async with running_site(host=hosts[0].runner_address) as web:
        fed = await build(tmp_path, web.url, hosts=hosts)
        sample_every(fed, 0.5)
        blast = asyncio.create_task(
            asyncio.to_thread(
                hosts[1].exec, "python3", "-c", BLAST, hosts[1].runner_address, "8", timeout=30
            )
        )
        code, _, metrics = await run(fed)
        await blast
    assert code == 0, metrics.get("error")
    resources = resources_of(metrics)
    for res in resources.values():
        assert_plausible(res)
    tx = {
        site: max(s["net_tx_kib_s"] or 0 for s in res["samples"]) for site, res in resources.items()
    }
    assert tx["site2"] > 2000, tx
    assert tx["site1"] < 1000, tx


def test_long_runs_are_downsampled_but_phases_use_every_sample() -> None:
    samples = [
        ResourceSample(
            t=i * 0.5,
            phase="watch" if i < 900 else "collect",
            cpu_pct=float(i % 100),
            mem_used_mib=100.0 + i,
            mem_total_mib=4096.0,
            disk_free_mib=1000.0,
            net_rx_kib_s=None,
            net_tx_kib_s=None,
            controller_cpu_pct=None,
            controller_rss_mib=None,
        )
        for i in range(1000)
    ]
    res = site_resources(0.5, samples)
    assert res.downsampled_from == 1000
    assert len(res.samples) <= 400
    assert res.by_phase["collect"]["mem_used_mib"].max == 100.0 + 999
    assert res.by_phase["watch"]["cpu_pct"].max == 99.0
    assert res.by_phase["watch"]["net_rx_kib_s"].mean is None


def _workflow(tmp_path: Path, line: str) -> Path:
    (tmp_path / "d.csv").write_text("x\n1\n")
    sites = "".join(f'[sites.{n}]\nfiles = ["d.csv"]\n' for n in ("alpha", "beta", "gamma"))
    path = tmp_path / "workflow.toml"
    path.write_text(f'app = "mean-app"\n{line}\n{sites}')
    return path


def test_sample_seconds_is_checked_and_leaves_the_digest_alone(tmp_path: Path) -> None:
    inventory = make_inventory()
    default = load_workflow(_workflow(tmp_path, ""), inventory)
    assert default.sample_seconds == 2.0
    off = load_workflow(_workflow(tmp_path, "sample_seconds = 0"), inventory)
    assert off.sample_seconds == 0
    # changing how often hosts are sampled is no other workflow: a resume accepts it
    assert off.digest == default.digest
    with pytest.raises(WorkflowError, match="field sample_seconds"):
        load_workflow(_workflow(tmp_path, "sample_seconds = -1"), inventory)
