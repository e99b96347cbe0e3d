"""The test-host library itself, and the connect paths that need a host to change under us."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time

import asyncssh
import pytest
from pydantic import SecretStr

from runner.sites.base import ConnectFailed, HostKeyMismatch
from runner.sites.ssh import SshConnection
from tests.testhosts import NS_PATTERN, PREFIX, sweep_stale

pytestmark = pytest.mark.netns


def test_hosts_are_distinct_machines(three_hosts) -> None:
    addresses = {h.address for h in three_hosts}
    keys = {h.host_key for h in three_hosts}
    workdirs = {h.workdir for h in three_hosts}
    assert len(addresses) == len(keys) == len(workdirs) == 3
    for host in three_hosts:
        assert NS_PATTERN.match(host.namespace)
        assert host.exec("ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout.count(host.address)
        assert host.pids(), "sshd runs inside the namespace"


def test_every_host_reaches_the_runner_address_and_only_it(three_hosts, tmp_path) -> None:
    address = three_hosts[0].runner_address
    assert {h.runner_address for h in three_hosts} == {address}
    (tmp_path / "who.txt").write_text("runner")
    argv = ["-m", "http.server", "0", "--bind", address, "--directory", str(tmp_path)]
    server = subprocess.Popen([sys.executable, "-u", *argv], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split("port ")[1].split()[0])
        fetch = (
            "import sys, urllib.request; "
            "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
        )
        three_hosts[1].link_down()  # another host's link going down changes nothing
        for host in (three_hosts[0], three_hosts[2]):
            got = host.exec(sys.executable, "-c", fetch, f"http://{address}:{port}/who.txt")
            assert got.stdout.strip() == "runner"
        routes = three_hosts[2].exec("ip", "route").stdout
        assert "default" not in routes
    finally:
        server.kill()
        server.wait(5)


def test_stale_namespaces_and_addresses_of_dead_runs_are_swept(three_hosts) -> None:
    dead_pid = 4_000_000 + (time.monotonic_ns() % 100_000)
    stale, address = f"{PREFIX}{dead_pid}h0", "10.231.0.1"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    label = f"lo:f{dead_pid}g0"
    subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo", "label", label], check=True)
    try:
        removed = sweep_stale()
        assert stale in removed
        assert address in removed
        assert not set(removed) & {h.namespace for h in three_hosts}, "live runs are kept"
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, check=False)
        subprocess.run(
            ["ip", "addr", "del", f"{address}/32", "dev", "lo"], capture_output=True, check=False
        )


async def test_connect_waits_for_a_booting_host(
    netns_hosts, caplog: pytest.LogCaptureFixture
) -> None:
    (host,) = netns_hosts(1)
    host.kill()  # no sshd yet: connections are refused, as while a VM boots
    caplog.set_level(logging.DEBUG, logger="runner.sites.ssh")
    site = SshConnection(host.site_entry("booting"), connect_timeout=15)
    dialling = asyncio.create_task(site.connect())
    deadline = time.monotonic() + 10
    while not any("waiting for sshd" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the first refused dial was never logged"
        await asyncio.sleep(0.02)
    assert "booting" in caplog.records[-1].getMessage()
    host.start_sshd()
    await asyncio.wait_for(dialling, 15)
    assert (await site.run("echo up", timeout=5)).stdout == "up\n"
    await site.close()


async def test_pinned_key_of_another_type_is_a_mismatch(netns_hosts, tmp_path) -> None:
    (host,) = netns_hosts(1)
    key = tmp_path / "ecdsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(key)], check=True)
    pinned = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    site = SshConnection(host.site_entry("ecdsa", host_keys=[pinned]), connect_timeout=10)
    with pytest.raises(HostKeyMismatch) as caught:
        await site.connect()
    message = str(caught.value)
    seen = asyncssh.import_public_key(host.host_key).get_fingerprint()
    assert f"the host showed ssh-ed25519 {seen}" in message
    assert "the inventory pins ecdsa-sha2-nistp256 SHA256:" in message


async def test_wrong_login_key_is_final(netns_hosts, tmp_path) -> None:
    first, second = netns_hosts(2)
    entry = first.site_entry("wrongkey")
    access = entry.ssh.model_copy(update={"private_key": second.ssh_access().private_key})
    site = SshConnection(entry.model_copy(update={"ssh": access}), connect_timeout=10)
    started = time.monotonic()
    with pytest.raises(ConnectFailed) as caught:
        await site.connect()
    assert time.monotonic() - started < 5
    assert "login refused" in str(caught.value)


async def test_unreadable_private_keys_are_named_not_quoted(netns_hosts, tmp_path) -> None:
    (host,) = netns_hosts(1)
    entry = host.site_entry("badkey")
    garbage = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LXRleHQ=\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    access = entry.ssh.model_copy(update={"private_key": SecretStr(garbage)})
    with pytest.raises(ConnectFailed) as caught:
        await SshConnection(entry.model_copy(update={"ssh": access})).connect()
    assert "c2VjcmV0" not in str(caught.value)
    assert "not an OpenSSH private key" in str(caught.value)
    access = entry.ssh.model_copy(
        update={"private_key": None, "private_key_file": str(tmp_path / "absent")}
    )
    with pytest.raises(ConnectFailed) as caught:
        await SshConnection(entry.model_copy(update={"ssh": access})).connect()
    assert str(caught.value) == (
        f"site badkey: cannot read the private key file {tmp_path / 'absent'}: "
        "No such file or directory"
    )
    key_file = tmp_path / "key"
    key_file.write_text(host.private_key)
    key_file.chmod(0o600)
    access = entry.ssh.model_copy(update={"private_key": None, "private_key_file": str(key_file)})
    async with SshConnection(entry.model_copy(update={"ssh": access}), connect_timeout=10) as site:
        assert (await site.run("echo file key", timeout=5)).ok
