"""The SSH transport against real sshd test hosts in network namespaces.

Each test talks only to its test hosts' addresses and to loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from fedinfra.inventory import ControllerSpec
from runner.sites.base import (
    CommandFailed,
    CommandTimeout,
    ConnectFailed,
    HostKeyMismatch,
    NotConnected,
    SiteError,
)
from runner.sites.registry import open_site
from runner.sites.ssh import SshConnection
from tests.runner.transport_helpers import (
    HTTP_SERVER_STOP,
    free_port,
    http_server_start,
    read_record,
    wait_http,
    wait_http_gone,
    write_sink,
)
from tests.testhosts import NetnsHost, test_hosts

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def pair() -> Iterator[list[NetnsHost]]:
    """Two hosts shared by the tests that leave them alive."""
    with test_hosts(2) as hosts:
        yield hosts


def _alive(pid: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def fingerprint(host_key_line: str) -> str:
    return str(asyncssh.import_public_key(host_key_line).get_fingerprint())


async def test_connect_with_pinned_key_reaches_that_host(pair: list[NetnsHost]) -> None:
    host = pair[0]
    site = open_site(host.site_entry("alpha"), connect_timeout=10)
    assert isinstance(site, SshConnection)
    async with site:
        result = await site.run("ip -4 -o addr show dev eth0; id -un", timeout=10)
    assert result.ok, result
    assert host.address in result.stdout
    assert result.stdout.split()[-1] == "root"


async def test_wrong_pinned_key_is_refused_naming_both_fingerprints(
    pair: list[NetnsHost],
) -> None:
    host, other = pair
    site = open_site(host.site_entry("alpha", host_keys=[other.host_key]), connect_timeout=10)
    started = time.monotonic()
    with pytest.raises(HostKeyMismatch) as caught:
        await site.connect()
    message = str(caught.value)
    assert time.monotonic() - started < 5, "a mismatch is final, never retried"
    assert "\n" not in message
    assert message.startswith("site alpha: host key mismatch at root@")
    assert host.address in message
    assert fingerprint(host.host_key) in message  # the key seen
    assert fingerprint(other.host_key) in message  # the key pinned
    with pytest.raises(NotConnected):
        await site.run("true", timeout=5)


async def test_run_gives_status_output_and_stdin(pair: list[NetnsHost]) -> None:
    async with SshConnection(pair[0].site_entry("alpha"), connect_timeout=10) as site:
        result = await site.run(
            "cat; echo out; echo err >&2; exit 3", stdin="from stdin\n", timeout=10
        )
    assert result.exit_status == 3
    assert result.stdout == "from stdin\nout\n"
    assert result.stderr == "err\n"


async def test_run_timeout_kills_the_command_and_its_children(pair: list[NetnsHost]) -> None:
    host = pair[0]
    marker = f"{host.workdir}/sleeper.pid"
    async with SshConnection(host.site_entry("alpha"), connect_timeout=10) as site:
        started = time.monotonic()
        with pytest.raises(CommandTimeout) as caught:
            await site.run(f"sleep 300 & echo $! > {marker}; wait", timeout=1.0)
        assert time.monotonic() - started < 3
        assert "site alpha" in str(caught.value)
        assert "1 s" in str(caught.value)
        pid = Path(marker).read_text().strip()
        # the child sleep is killed with its group (a zombie awaiting its reaper counts as dead)
        deadline = time.monotonic() + 5
        while _alive(pid):
            assert time.monotonic() < deadline, f"sleep {pid} survived the timeout"
            await asyncio.sleep(0.05)
        # the connection is still usable after a timeout
        assert (await site.run("echo alive", timeout=5)).stdout == "alive\n"


async def test_write_file_sets_mode_and_leaves_no_temporary(pair: list[NetnsHost]) -> None:
    host = pair[1]
    target = f"{host.workdir}/data/sub/site_info.json"
    async with SshConnection(host.site_entry("beta"), connect_timeout=10) as site:
        await site.write_file(target, '{"id": 1}', mode=0o600)
        await site.write_file(target, b'{"id": 2}', mode=0o600)
        stat = await site.run(f"stat -c %a {target}; ls -A {host.workdir}/data/sub", timeout=5)
        with pytest.raises(SiteError) as caught:
            await site.write_file("/proc/version/x", "no")
        assert str(caught.value).startswith("site beta: writing /proc/version/x on root@")
    assert stat.stdout.split() == ["600", "site_info.json"]
    assert Path(target).read_text() == '{"id": 2}'


async def test_controller_start_ping_through_tunnel_and_stop(pair: list[NetnsHost]) -> None:
    host = pair[0]
    data_dir = f"{host.workdir}/ctl"
    controller = ControllerSpec(
        port=8000, data_dir=data_dir, start=http_server_start(), stop=HTTP_SERVER_STOP
    )
    async with SshConnection(
        host.site_entry("alpha", controller=controller), connect_timeout=10
    ) as site:
        await site.start_controller()
        await site.write_file(f"{data_dir}/ping/index.html", "pong")
        url = await site.controller_url()
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":8000")
        assert await site.controller_url() == url, "one forward per controller, reused"
        response = await wait_http(f"{url}/ping/", deadline=10, who="site alpha's controller")
        assert response.text == "pong"
        await site.stop_controller()
        await wait_http_gone(f"{url}/ping/", deadline=10, who="site alpha's stopped controller")
    assert Path(host.workdir, "controller.log").exists()


async def test_tunnel_reaches_the_hosts_own_localhost(
    pair: list[NetnsHost], tmp_path: Path
) -> None:
    """The same port on the runner's and the host's loopback are different servers."""
    host = pair[1]
    port = free_port()
    runner_dir, host_dir = tmp_path / "runner", tmp_path / "host"
    runner_dir.mkdir()
    host_dir.mkdir()
    (runner_dir / "who.txt").write_text("runner")
    (host_dir / "who.txt").write_text("host")
    argv = ["-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory"]
    runner_server = subprocess.Popen(
        [sys.executable, *argv, str(runner_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host_server = host.spawn(sys.executable, *argv, str(host_dir))
    try:
        direct = await wait_http(
            f"http://127.0.0.1:{port}/who.txt", deadline=10, who="the runner's own server"
        )
        assert direct.text == "runner"
        controller = ControllerSpec(port=port, data_dir=str(host_dir))
        async with SshConnection(
            host.site_entry("beta", controller=controller), connect_timeout=10
        ) as site:
            url = await site.controller_url()
            tunnelled = await wait_http(f"{url}/who.txt", deadline=10, who="the host's server")
        assert tunnelled.text == "host"
    finally:
        runner_server.kill()
        host_server.kill()
        runner_server.wait(5)
        host_server.wait(5)


async def test_upload_host_file_streams_the_hosts_own_file(
    pair: list[NetnsHost], tmp_path: Path
) -> None:
    host = pair[0]
    size = 50 * 1024 * 1024
    port = 8123
    data = Path(host.workdir, "partner.csv")
    with data.open("wb") as out:
        block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB
        for _ in range(size // len(block)):
            out.write(block)
    expected = hashlib.sha256(data.read_bytes()).hexdigest()
    record = tmp_path / "record.json"
    sink = host.spawn("python3", str(write_sink(tmp_path)), str(port), str(record))
    try:
        controller = ControllerSpec(port=port, data_dir=f"{host.workdir}/data")
        async with SshConnection(
            host.site_entry("alpha", controller=controller), connect_timeout=10
        ) as site:
            url = await site.controller_url()
            await wait_http(f"{url}/", deadline=10, who="the host's upload sink")
            sent = await site.upload_host_file(port, 42, str(data), "data.csv", timeout=60)
            assert sent == size
            got = read_record(record)
            assert got["bytes"] == size
            assert got["sha256"] == expected
            assert got["origin"] == "https://featurecloud.ai"
            assert str(got["path"]).startswith("/file-upload/?projectId=42&fileName=data.csv")
            with pytest.raises(CommandFailed) as caught:
                await site.upload_host_file(port, 42, f"{host.workdir}/missing.csv", "data.csv")
            assert "missing.csv" in str(caught.value)
            assert "site alpha" in str(caught.value)
    finally:
        sink.kill()
        sink.wait(5)


async def test_dead_host_is_named_within_the_deadline(
    netns_hosts, caplog: pytest.LogCaptureFixture
) -> None:
    refused, unreachable = netns_hosts(2)
    refused.kill()
    unreachable.link_down()
    for host, name in ((refused, "down"), (unreachable, "gone")):
        site = open_site(host.site_entry(name), connect_timeout=2.0)
        started = time.monotonic()
        with pytest.raises(ConnectFailed) as caught:
            await site.connect()
        elapsed = time.monotonic() - started
        assert 1.5 < elapsed < 4.0, elapsed
        message = str(caught.value)
        assert message.startswith(f"site {name}: no SSH login at root@{host.address}:22 within 2 s")
        assert "\n" not in message


async def test_host_dying_mid_run_is_an_error_and_a_reconnect_works(netns_hosts) -> None:
    (host,) = netns_hosts(1)
    async with SshConnection(host.site_entry("alpha"), connect_timeout=10) as site:
        assert (await site.run("true", timeout=5)).ok
        host.kill()
        started = time.monotonic()
        with pytest.raises(SiteError) as caught:
            await site.run("sleep 60", timeout=10)
        assert time.monotonic() - started < 10
        assert "site alpha" in str(caught.value)
        host.start_sshd()  # the host comes back: connect() dials afresh
        await site.connect()
        assert (await site.run("echo back", timeout=5)).stdout == "back\n"
