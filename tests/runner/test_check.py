"""`python -m runner check`: every check of every site, one line per problem naming both.

A coordinator reads the lines and fixes what they name, and a script reads `--json` and the
exit code; so each check is made to fail for real at one site (a missing program, a port
taken, a full disk, a clock off, a wrong password, a host showing another key) and its line,
its JSON record and the exit code are read back from the command run as a process. Local
sites and the OpenSSH test hosts against the emulated website; the run's own preflight is
shown to stop on the same checks.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fcapi.emulator.serve import RunningServer, running_controller, running_site
from fedinfra.inventory import Inventory, SiteEntry
from runner.api import execute
from runner.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_SITES_FAILED, RunFailed
from runner.plan.checks import check_names
from tests.runner.federation import Federation, build
from tests.testhosts import NetnsHost

CHECK_BOUND = 90.0


@pytest.fixture
async def website() -> AsyncIterator[RunningServer]:
    async with running_site() as web:
        yield web


async def run_check(
    fed: Federation, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """`python -m runner check` as a process (the website serves from this loop meanwhile)."""
    inv, env_file = fed.write_inputs()
    argv = ["check", "--inventory", str(inv), "--env-file", str(env_file)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runner",
        *argv,
        "--website-url",
        fed.website_url,
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), CHECK_BOUND)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def changed(fed: Federation, name: str, **changes: Any) -> None:
    """The inventory with site `name` changed (the federation is rewritten in place)."""
    sites = [s.model_copy(update=changes) if s.name == name else s for s in fed.inventory.sites]
    fed.inventory = Inventory(version=fed.inventory.version, stack="e2e", sites=sites)


def controller_of(site: SiteEntry, **changes: Any) -> Any:
    return site.controller.model_copy(update=changes)


async def problems_of(fed: Federation, *extra: str, env: dict[str, str] | None = None) -> Any:
    """The problem lines (stderr) and the JSON document (stdout) of one check."""
    code, out, err = await run_check(fed, "--json", *extra, env=env)
    doc = json.loads(out)
    assert doc["exit_code"] == code
    return code, [line for line in err.splitlines() if line], doc, out


def assert_only_problem(lines: list[str], doc: dict[str, Any], site: str, check: str) -> str:
    """Exactly one problem, at `site`, of `check`: its line names both; every other passes."""
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"runner check: site {site}: {check}: "), lines
    assert doc["ready"] is False and doc["problems"] == [lines[0].removeprefix("runner check: ")]
    for name, checks in doc["sites"].items():
        assert list(checks) == sorted(check_names())
        for record in checks.values():
            failing = (name, record["check"]) == (site, check)
            assert record["status"] == ("fail" if failing else "pass"), record
    return lines[0]


async def test_the_demo_reports_every_check_for_every_site(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runner",
        "check",
        "--demo",
        "--json",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), CHECK_BOUND)
    assert proc.returncode == EXIT_OK, err.decode()
    doc = json.loads(out)
    assert doc["ready"] is True and doc["checks"] == check_names()
    assert sorted(doc["sites"]) == ["site1", "site2", "site3"]
    for checks in doc["sites"].values():
        assert sorted(checks) == sorted(check_names())
        assert {r["status"] for r in checks.values()} == {"pass"}
    assert list(tmp_path.iterdir()) == []  # the demo's federation is gone again


async def test_a_missing_start_program_is_named(website: RunningServer, tmp_path: Path):
    fed = await build(tmp_path, website.url, local_sites=2)
    site = fed.inventory.site("site2")
    start = "exec /nonexistent/fc-start --port {port} --data-dir {data_dir}"
    changed(fed, "site2", controller=controller_of(site, start=start))
    code, lines, doc, _ = await problems_of(fed)
    assert code == EXIT_SITES_FAILED
    line = assert_only_problem(lines, doc, "site2", "runtime")
    assert "/nonexistent/fc-start is not found on the host" in line


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something that is no controller listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


async def test_a_port_taken_by_a_stranger_is_named_and_one_of_ours_is_not(
    website: RunningServer, tmp_path: Path, taken_port: int
):
    fed = await build(tmp_path, website.url, local_sites=2)
    site = fed.inventory.site("site2")
    changed(fed, "site2", controller=controller_of(site, port=taken_port))
    code, lines, doc, _ = await problems_of(fed)
    assert code == EXIT_SITES_FAILED
    line = assert_only_problem(lines, doc, "site2", "port")
    assert f"port {taken_port} is taken by something that is not a controller" in line
    # a controller already up on the site's port (kept from a run) is ours: ready
    site1 = fed.inventory.site("site1")
    data = tmp_path / "kept"
    async with running_controller(website.url, str(data)) as ctl:
        port = int(ctl.url.rsplit(":", 1)[1])
        changed(fed, "site1", controller=controller_of(site1, port=port))
        changed(fed, "site2", controller=site.controller)
        code, _, doc, _ = await problems_of(fed)
    assert code == EXIT_OK, doc["problems"]
    assert doc["sites"]["site1"]["port"]["data"]["state"] == "ours"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a data dir on it has far less room than a run needs."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)])
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_too_little_free_disk_is_named(
    website: RunningServer, tmp_path: Path, small_disk: Path
):
    fed = await build(tmp_path / "fed", website.url, local_sites=2)
    site = fed.inventory.site("site1")
    changed(fed, "site1", controller=controller_of(site, data_dir=str(small_disk / "data")))
    code, lines, doc, _ = await problems_of(fed)
    assert code == EXIT_SITES_FAILED
    line = assert_only_problem(lines, doc, "site1", "disk")
    assert "MiB free in" in line and "below 512 MiB" in line
    # the bound is the caller's: 1 MiB is enough
    code, lines, _, _ = await problems_of(fed, "--min-free-disk", "1MiB")
    assert code == EXIT_OK, lines


async def test_a_host_clock_off_is_named(website: RunningServer, tmp_path: Path):
    """A `date` on the sites' PATH ten minutes ahead: local sites' shells run it."""
    shim = tmp_path / "shim"
    shim.mkdir()
    real = subprocess.run(["sh", "-c", "command -v date"], capture_output=True, text=True)
    (shim / "date").write_text(
        f'#!/bin/sh\nif [ "$*" = "-u +%s" ]; then echo $(( $({real.stdout.strip()} -u +%s) + 600 ))'
        f'; else exec {real.stdout.strip()} "$@"; fi\n'
    )
    (shim / "date").chmod(0o755)
    fed = await build(tmp_path / "fed", website.url, local_sites=1)
    path = {"PATH": f"{shim}:{os.environ['PATH']}"}
    code, lines, doc, _ = await problems_of(fed, env=path)
    assert code == EXIT_SITES_FAILED
    line = assert_only_problem(lines, doc, "site1", "clock")
    assert "s ahead of the runner's" in line
    offset = doc["sites"]["site1"]["clock"]["data"]["offset_seconds"]
    assert 595 <= offset <= 605
    code, lines, _, _ = await problems_of(fed, "--max-clock-offset", "15m", env=path)
    assert code == EXIT_OK, lines


async def test_a_wrong_password_is_named_without_the_password(
    website: RunningServer, tmp_path: Path
):
    fed = await build(tmp_path, website.url, local_sites=2)
    user = fed.inventory.site("site2").fc_user
    fed.passwords[user] = type(fed.passwords[user])("not-the-password-4711")
    code, lines, doc, out = await problems_of(fed)
    assert code == EXIT_SITES_FAILED
    line = assert_only_problem(lines, doc, "site2", "login")
    assert f"FeatureCloud user {user}" in line
    assert "not-the-password-4711" not in json.dumps(doc) + out + "\n".join(lines)


async def test_bad_input_is_exit_2(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runner",
        "check",
        "--inventory",
        str(tmp_path / "none.json"),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), CHECK_BOUND)
    assert proc.returncode == EXIT_BAD_INPUT
    assert err.decode().startswith("runner check: ") and "none.json" in err.decode()


async def test_a_runs_preflight_stops_on_the_same_checks(
    website: RunningServer, tmp_path: Path, taken_port: int
):
    fed = await build(tmp_path, website.url, local_sites=2)
    site = fed.inventory.site("site2")
    changed(fed, "site2", controller=controller_of(site, port=taken_port))
    with pytest.raises(RunFailed, match=r"^site site2: port: port \d+ is taken"):
        await execute(fed.inventory, fed.workflow(), fed.passwords, website_url=fed.website_url)
    assert not fed.outdir.exists()  # before any run folder, and so before any project
    assert await fed.projects() == []


@pytest.mark.netns
async def test_ssh_hosts_pass_and_a_stranger_key_is_named(
    netns_hosts: Callable[[int], list[NetnsHost]], tmp_path: Path
):
    hosts = netns_hosts(2)
    stranger = hosts[0].host_key
    async with running_site(host=hosts[0].runner_address) as web:
        fed = await build(tmp_path, web.url, hosts=hosts)
        code, lines, doc, _ = await problems_of(fed)
        assert code == EXIT_OK, lines
        assert doc["sites"]["site2"]["reachable"]["detail"] == f"connected to {hosts[1].address}:22"
        access = fed.inventory.site("site2").ssh
        assert access is not None
        changed(fed, "site2", ssh=access.model_copy(update={"host_keys": [stranger]}))
        code, lines, doc, _ = await problems_of(fed)
    assert code == EXIT_SITES_FAILED
    assert len(lines) == 1  # the connection; the host checks are skipped because of it
    assert lines[0].startswith("runner check: site site2: reachable: ")
    assert "host key" in lines[0].lower() and hosts[1].address in lines[0]
    skipped = {c: r["status"] for c, r in doc["sites"]["site2"].items()}
    assert skipped == {
        "reachable": "fail",
        "runtime": "skip",
        "port": "skip",
        "disk": "skip",
        "clock": "skip",
        "host": "skip",
        "login": "pass",
    }
