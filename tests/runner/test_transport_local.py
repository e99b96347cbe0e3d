"""The local transport (sites as directories and processes here) and the emulated controller."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedinfra.inventory import ControllerSpec, SiteEntry
from runner.sites.base import (
    CommandFailed,
    CommandTimeout,
    SiteConnection,
    SiteError,
)
from runner.sites.emulated import controller_spec
from runner.sites.local import LocalConnection
from runner.sites.registry import open_site
from runner.sites.shell import emulator_pid_file as pid_file
from tests.runner.transport_helpers import (
    HTTP_SERVER_STOP,
    free_port,
    http_server_start,
    read_record,
    wait_http,
    wait_http_gone,
    write_sink,
)


def local_site(tmp_path: Path, controller: ControllerSpec | None = None) -> SiteEntry:
    workdir = tmp_path / "site"
    return SiteEntry(
        name="here",
        fc_user="here@example.org",
        role="coordinator",
        transport="local",
        workdir=str(workdir),
        controller=controller or ControllerSpec(data_dir=str(workdir / "data")),
    )


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_open_site_picks_local_and_connect_makes_the_workdir(tmp_path: Path) -> None:
    site = open_site(local_site(tmp_path))
    assert isinstance(site, LocalConnection)
    assert isinstance(site, SiteConnection)
    await site.connect()
    assert (tmp_path / "site").is_dir()
    await site.close()


async def test_run_gives_status_output_and_stdin(tmp_path: Path) -> None:
    async with LocalConnection(local_site(tmp_path)) as site:
        result = await site.run("cat; echo out; echo err >&2; exit 3", stdin=b"in\n", timeout=10)
    assert (result.exit_status, result.stdout, result.stderr) == (3, "in\nout\n", "err\n")


async def test_run_timeout_kills_the_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "sleeper.pid"
    async with LocalConnection(local_site(tmp_path)) as site:
        started = time.monotonic()
        with pytest.raises(CommandTimeout) as caught:
            await site.run(f"sleep 300 & echo $! > {marker}; wait", timeout=0.5)
    assert time.monotonic() - started < 3
    assert str(caught.value).startswith("site here: local command still running after 0.5 s")
    pid = int(marker.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid):
        assert time.monotonic() < deadline, f"sleep {pid} survived the timeout"
        await asyncio.sleep(0.05)


async def test_write_file_mode_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "site" / "data" / "site_info.json"
    async with LocalConnection(local_site(tmp_path)) as site:
        await site.write_file(str(target), '{"id": 1}', mode=0o600)
        with pytest.raises(SiteError) as caught:
            await site.write_file("/proc/version/x", "no")
        assert str(caught.value).startswith("site here: writing /proc/version/x failed")
    assert target.read_text() == '{"id": 1}'
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(target.parent) == ["site_info.json"]


async def test_controller_start_ping_stop(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "site" / "ctl"
    controller = ControllerSpec(
        port=port,
        data_dir=str(data_dir),
        start=http_server_start(sys.executable),
        stop=HTTP_SERVER_STOP,
    )
    async with LocalConnection(local_site(tmp_path, controller)) as site:
        await site.start_controller()
        await site.write_file(f"{data_dir}/ping/index.html", "pong")
        url = await site.controller_url()
        assert url == f"http://127.0.0.1:{port}"
        response = await wait_http(f"{url}/ping/", deadline=10, who="the local controller")
        assert response.text == "pong"
        await site.stop_controller()
        await wait_http_gone(f"{url}/ping/", deadline=10, who="the stopped local controller")
    assert (tmp_path / "site" / "controller.log").exists()


async def test_upload_host_file_streams_a_local_file(tmp_path: Path) -> None:
    port = free_port()
    size = 50 * 1024 * 1024
    data = tmp_path / "partner.csv"
    block = hashlib.sha256(b"local").digest() * 32768
    with data.open("wb") as out:
        for _ in range(size // len(block)):
            out.write(block)
    record = tmp_path / "record.json"
    sink = subprocess.Popen([sys.executable, str(write_sink(tmp_path)), str(port), str(record)])
    try:
        await wait_http(f"http://127.0.0.1:{port}/", deadline=10, who="the upload sink")
        async with LocalConnection(local_site(tmp_path)) as site:
            sent = await site.upload_host_file(port, 7, str(data), "data.csv", timeout=60)
            with pytest.raises(CommandFailed) as caught:
                await site.upload_host_file(port, 7, str(tmp_path / "nope.csv"), "data.csv")
        assert sent == size
        got = read_record(record)
        assert got["bytes"] == size
        assert got["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
        assert str(got["path"]).startswith("/file-upload/?projectId=7&fileName=data.csv")
        assert "nope.csv" in str(caught.value)
    finally:
        sink.kill()
        sink.wait(5)


def test_emulated_controller_spec_renders_the_emulator_command() -> None:
    spec = controller_spec("/srv/fc/data", "http://127.0.0.1:9999", 8001, python="/opt/py {x}")
    start = spec.start_command
    assert start.startswith("'/opt/py {x}' -m fcapi.emulator controller ")
    assert "--site-url http://127.0.0.1:9999 --data-dir /srv/fc/data" in start
    assert "--host 127.0.0.1 --port 8001 --pid-file /srv/fc/fc-controller.pid" in start
    assert pid_file("/srv/fc/data/") == "/srv/fc/fc-controller.pid"
    assert "/srv/fc/fc-controller.pid" in spec.stop_command
    assert (spec.name, spec.port, spec.data_dir) == ("fc-controller", 8001, "/srv/fc/data")


async def test_emulated_stop_is_harmless_when_nothing_runs(tmp_path: Path) -> None:
    spec = controller_spec(str(tmp_path / "site" / "data"), "http://127.0.0.1:1", free_port())
    async with LocalConnection(local_site(tmp_path, spec)) as site:
        await site.stop_controller()  # no pid file
        Path(pid_file(spec.data_dir)).write_text("999999999\n")
        await site.stop_controller()  # a stale pid file
    assert not Path(pid_file(spec.data_dir)).exists()
