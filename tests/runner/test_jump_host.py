"""Sites behind a jump host: VMs on a remote hypervisor's NAT network, hosts behind a bastion.

The hosts behind sit in network namespaces linked to the jump host's namespace only, so the
runner cannot reach them but through an SSH tunnel the jump host opens; each hop pins its own
host key. The whole mean workflow must come out right that way, and every refusal must say
which hop refused.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from pydantic import ValidationError

from fcapi.emulator.serve import running_site
from fedinfra.inventory import SshAccess
from runner.api import execute
from runner.demo_data import CHECK_MEAN
from runner.sites.base import ConnectFailed, HostKeyMismatch
from runner.sites.emulated import controller_spec
from runner.sites.ssh import SshConnection
from tests.runner.federation import build, outputs, secrets_of
from tests.testhosts import NetnsHost, relay_through, test_hosts

pytestmark = pytest.mark.netns

ACCESS = {
    "address": "10.0.0.1",
    "user": "root",
    "private_key": "key text",
    "host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNvbWUta2V5LWJ5dGVzLWZvci10ZXN0aW5nLi4u"],
}


def test_a_jump_host_with_a_jump_host_of_its_own_is_refused() -> None:
    one_hop = SshAccess.model_validate({**ACCESS, "jump": ACCESS})
    assert one_hop.jump is not None and one_hop.jump.jump is None
    with pytest.raises(ValidationError, match="one hop only"):
        SshAccess.model_validate({**ACCESS, "jump": {**ACCESS, "jump": ACCESS}})


async def test_the_mean_workflow_completes_through_a_jump_host(tmp_path: Path) -> None:
    with test_hosts(3, behind=2) as hosts:
        jump, behind = hosts[0], hosts[1:]
        async with running_site(host=jump.runner_address) as web:
            port = int(web.url.rsplit(":", 1)[1])
            relay_through(jump, jump.runner_address, port)
            fed = await build(tmp_path, web.url, hosts=hosts)
            sites = list(fed.inventory.sites)
            for i, host in enumerate(behind, start=1):
                # the hosts behind call the website through the jump host's relay, as VMs
                # reach out through their hypervisor's NAT
                spec = controller_spec(
                    f"{host.workdir}/data", f"http://{host.gateway}:{port}", 8000
                )
                update = {"ssh": host.jump_access(jump), "controller": spec}
                sites[i] = sites[i].model_copy(update=update)
            fed.inventory = fed.inventory.model_copy(update={"sites": sites})
            outcome = await execute(
                fed.inventory, fed.workflow(), fed.passwords, website_url=web.url
            )
        # their sshd saw the runner come from the jump host's side of their only link
        logins = {h.address: h.sshd_log.read_text() for h in behind}
    assert outcome.code == 0, outcome.summary
    means = {
        site: text.split()[-1] for site, text in outputs(outcome.run_dir, "output.csv").items()
    }
    assert means == {"site1": CHECK_MEAN, "site2": CHECK_MEAN, "site3": CHECK_MEAN}
    for host in behind:
        assert f"Accepted publickey for root from {host.gateway}" in logins[host.address]
    saved = json.loads((outcome.run_dir / "inputs/inventory.json").read_text())
    assert saved["sites"][1]["ssh"]["jump"]["address"] == jump.address
    text = "".join(p.read_text(errors="replace") for p in outcome.run_dir.rglob("*") if p.is_file())
    for secret in secrets_of(fed):
        assert secret not in text


@pytest.fixture
def behind_one() -> Iterator[tuple[NetnsHost, NetnsHost]]:
    with test_hosts(2, behind=1) as (jump, site):
        yield jump, site


def _site(host: NetnsHost, access: SshAccess, name: str = "behind") -> SshConnection:
    entry = host.site_entry(name).model_copy(update={"ssh": access})
    return SshConnection(entry, connect_timeout=3)


async def test_a_host_behind_is_not_reachable_directly(behind_one) -> None:
    jump, site = behind_one
    with pytest.raises(ConnectFailed) as caught:
        await _site(site, site.ssh_access()).connect()
    assert f"no SSH login at root@{site.address}:22 within 3 s" in str(caught.value)
    callers = set(re.findall(r"Connection from (\S+)", site.sshd_log.read_text()))
    assert callers <= {site.address}, "no dial but its own readiness probe ever reached it"
    # while through the jump host it answers, all operations included
    async with _site(site, site.jump_access(jump)) as conn:
        assert (await conn.run("hostname -I", timeout=10)).stdout.split() == [site.address]
        await conn.write_file(f"{site.workdir}/hello.txt", "through the tunnel\n")
        assert (Path(site.workdir) / "hello.txt").read_text() == "through the tunnel\n"


async def test_a_wrong_jump_host_key_is_refused_naming_the_jump_host(behind_one) -> None:
    jump, site = behind_one
    wrong = site.host_key  # the jump host pins the site's key: not the key it shows
    access = site.ssh_access().model_copy(update={"jump": jump.ssh_access([wrong])})
    started = time.monotonic()
    with pytest.raises(HostKeyMismatch) as caught:
        await _site(site, access).connect()
    assert time.monotonic() - started < 3, "a wrong key is final, not retried"
    seen = asyncssh.import_public_key(jump.host_key).get_fingerprint()
    assert str(caught.value).startswith(
        f"site behind: host key mismatch at jump host root@{jump.address}:22: "
        f"the host showed ssh-ed25519 {seen}"
    )
    assert "Accepted publickey" not in site.sshd_log.read_text(), "the site was never dialled"


async def test_each_hop_pins_its_own_keys(behind_one) -> None:
    jump, site = behind_one
    # the site pins the jump host's key: the jump host's key never vouches for the site
    access = site.ssh_access([jump.host_key]).model_copy(update={"jump": jump.ssh_access()})
    with pytest.raises(HostKeyMismatch) as caught:
        await _site(site, access).connect()
    assert (
        f"host key mismatch at root@{site.address}:22 through jump host root@{jump.address}:22"
    ) in str(caught.value)


async def test_an_unreachable_hop_is_named(behind_one) -> None:
    jump, site = behind_one
    dead_port = jump.ssh_access().model_copy(update={"port": 2222})
    access = site.ssh_access().model_copy(update={"jump": dead_port})
    with pytest.raises(ConnectFailed) as caught:
        await _site(site, access).connect()
    assert f"no SSH login at jump host root@{jump.address}:2222 within 3 s" in str(caught.value)

    site.kill()  # the jump host answers, the site behind it does not
    with pytest.raises(ConnectFailed) as caught:
        await _site(site, site.jump_access(jump)).connect()
    message = str(caught.value)
    assert f"no SSH login at root@{site.address}:22 through jump host root@{jump.address}:22" in (
        message
    )
    assert "refused" in message.lower(), message
    ours = subprocess.run(
        ["ss", "-Htn", "state", "established", "dst", jump.address],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert ours.strip() == "", "the connection to the jump host was closed on giving up"
