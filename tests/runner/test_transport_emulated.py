"""The emulator's controller driven through the transports, as the runner will drive it.

Over SSH the controller runs inside a test host's namespace on that host's 127.0.0.1:8000 and
reaches the emulated website at the runner's address for test hosts (`host.runner_address`); the
runner reaches the controller only through the tunnel. The same start/stop commands
(`runner.sites.emulated.controller_spec`) serve the local transport.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from fcapi.emulator.serve import running_site
from fcapi.models import Project, Site
from fcapi.website import WebsiteClient
from fedinfra.inventory import SiteEntry
from runner.sites.base import SiteConnection
from runner.sites.emulated import controller_spec
from runner.sites.registry import open_site
from runner.sites.shell import emulator_pid_file as pid_file
from tests.runner.transport_helpers import free_port, wait_http, wait_http_gone
from tests.testhosts import NetnsHost

PASSWORD = "emulated-pass-1"


async def site_and_project(url: str, user: str) -> tuple[Site, Project]:
    """A website account with its site and one project, as the runner's phases make them."""
    await WebsiteClient.signup(url, user, PASSWORD)
    async with WebsiteClient(url, user, SecretStr(PASSWORD)) as client:
        site = await client.ensure_site(user.split("@")[0])
        project = await client.create_project("transport test")
    return site, project


async def controller_round_trip(
    connection: SiteConnection, entry: SiteEntry, site: Site, project: Project, data: Path
) -> None:
    """start -> site_info.json -> /ping/ -> host upload -> stop, as the runner will do it."""
    spec = entry.controller
    async with connection:
        await connection.start_controller()
        await connection.write_file(
            f"{spec.data_dir}/site_info.json", site.model_dump_json(), mode=0o600
        )
        url = await connection.controller_url()
        answer = await wait_http(f"{url}/ping/", deadline=20, who=f"{entry.name}'s controller")
        assert answer.json() == {"status": "running"}
        sent = await connection.upload_host_file(spec.port, project.id, str(data), "data.csv")
        assert sent == data.stat().st_size
        stored = Path(spec.data_dir, "uploads", f"Project_{project.id}", "data.csv")
        assert (
            hashlib.sha256(stored.read_bytes()).digest()
            == hashlib.sha256(data.read_bytes()).digest()
        )
        await connection.stop_controller()
        await wait_http_gone(f"{url}/ping/", deadline=10, who=f"{entry.name}'s stopped controller")
    assert not Path(pid_file(spec.data_dir)).exists()
    assert Path(entry.workdir, "controller.log").exists()


@pytest.fixture
async def website_on_link(netns_hosts) -> AsyncIterator[tuple[NetnsHost, str]]:
    """One test host and the emulated website on the address test hosts reach the runner at."""
    (host,) = netns_hosts(1)
    async with running_site(host=host.runner_address, port=0) as web:
        yield host, web.url


@pytest.mark.netns
async def test_emulator_controller_on_a_host_through_the_tunnel(
    website_on_link: tuple[NetnsHost, str],
) -> None:
    host, url = website_on_link
    site, project = await site_and_project(url, "gamma@example.org")
    spec = controller_spec(f"{host.workdir}/fc/data", url, 8000, python=sys.executable)
    entry = host.site_entry("gamma", controller=spec)
    data = Path(host.workdir, "local-only.csv")
    data.write_text("1,2,3,4,5\n" * 1000)
    await controller_round_trip(open_site(entry, connect_timeout=10), entry, site, project, data)


async def test_emulator_controller_as_a_local_site(tmp_path: Path) -> None:
    async with running_site() as web:
        site, project = await site_and_project(web.url, "delta@example.org")
        workdir = tmp_path / "delta"
        spec = controller_spec(str(workdir / "fc" / "data"), web.url, free_port())
        entry = SiteEntry(
            name="delta",
            fc_user="delta@example.org",
            role="coordinator",
            transport="local",
            workdir=str(workdir),
            controller=spec,
        )
        data = tmp_path / "data.csv"
        data.write_text("7,9,11\n")
        await controller_round_trip(open_site(entry), entry, site, project, data)
