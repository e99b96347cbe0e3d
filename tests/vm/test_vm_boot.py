"""The guest side of `pulumi up -s sim`, for real: a Debian VM under qemu booted from the seed
fedinfra renders for site alice, reached with the host key fedinfra generated pinned,
provisioned under its own systemd (dockerd really runs), then running the emulator's
controller as a site of a mean run with two local sites.

The VM reaches no network (`restrict=on`): fedstack's and the FeatureCloud CLI's wheels come
over SSH, found by provision.sh through the stack's `pipIndexUrl` as a `file://` index, and the
controller reaches the website through a reverse forward of the test's SSH connection.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from pathlib import Path

import asyncssh
import pytest
import yaml

from fcapi.emulator.serve import running_site
from fedinfra.inventory import INVENTORY_VERSION, Inventory, SiteEntry
from fedinfra.script import (
    CHECK_SCRIPT,
    PROVISION_SCRIPT,
    RUN_STDIN,
    load_script,
    provision_settings,
    render_stdin,
)
from runner.sites.emulated import controller_spec
from tests.infra.harness import ed25519_pair
from tests.runner.federation import assert_completed, build, kill_processes_under, only_run
from tests.vm.guest import PROVISION_TIMEOUT, run, snapshot, upload_tree
from tests.vm.image import cached_image
from tests.vm.qemu import Vm, VmError, booted
from tests.vm.seed import SiteSeed, render_site, seed_problems, write_seed_iso
from tests.vm.wheels import VM_WHEELS, wheelhouse

pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("qemu-system-x86_64", "qemu-img", "debootstrap")),
        reason="needs qemu-system-x86, qemu-utils and debootstrap (make sysdeps)",
    ),
]

SITE = "alice"
INDEX = {"fedstack:pipIndexUrl": f"file://{VM_WHEELS}/simple"}
#: the runner process, from its start to its last output, with a controller under emulation
RUN_DEADLINE = 600.0


def test_a_seed_that_cannot_work_is_named_before_any_boot():
    seed = render_site(SITE)
    assert seed_problems(seed) == []
    _, stranger = ed25519_pair()
    wrong_host = SiteSeed(**{**seed.__dict__, "host_public_key": stranger.strip()})
    (problem,) = seed_problems(wrong_host)
    assert problem.startswith("host key:")
    doc = yaml.safe_load(seed.user_data)
    doc["users"][0]["ssh_authorized_keys"] = []
    no_user_key = SiteSeed(
        **{**seed.__dict__, "user_data": "#cloud-config\n" + yaml.safe_dump(doc)}
    )
    (problem,) = seed_problems(no_user_key)
    assert problem.startswith("user key:") and "'fedstack'" in problem


@pytest.mark.timeout(3600)
async def test_a_vm_booted_from_fedinfras_seed_provisions_and_runs_a_site(tmp_path: Path):
    started = time.monotonic()
    image = await asyncio.to_thread(cached_image)
    seed = await asyncio.to_thread(render_site, SITE, secrets=INDEX)
    assert seed_problems(seed) == []
    assert seed.readiness_command.startswith("rc=0; cloud-init status --wait")
    assert seed.provision_command == RUN_STDIN
    fc_version = re.search(r"^export FEDSTACK_FC_VERSION=(\S+)$", seed.provision_stdin, re.M)
    assert fc_version is not None
    wheels = await asyncio.to_thread(wheelhouse, fc_version.group(1), tmp_path)
    iso = write_seed_iso(seed, tmp_path / "seed")
    prepared = time.monotonic()
    async with booted(SITE, image, iso, tmp_path / "vm") as vm:
        await _refuses_what_the_seed_did_not_give(vm, seed)
        conn = await _login(vm, seed)
        async with conn:
            booted_at = time.monotonic()
            await run(conn, seed.readiness_command, what="the readiness gate", timeout=600)
            await upload_tree(conn, wheels, VM_WHEELS)
            await _provision_twice(vm, seed, conn)
            provisioned = time.monotonic()
            print(f"\nprovisioned after {provisioned - started:.0f}s", flush=True)
            await _a_failing_step_is_named(conn, seed, fc_version.group(1))
            await _mean_run_with_the_vm_as_a_site(vm, seed, conn, tmp_path / "run")
    print(
        f"\nimage+seed+wheels {prepared - started:.0f}s, "
        f"boot to login {booted_at - prepared:.0f}s, "
        f"gate+provisioning {provisioned - booted_at:.0f}s, "
        f"total {time.monotonic() - started:.0f}s (console: {vm.console})"
    )


async def _login(vm: Vm, seed: SiteSeed) -> asyncssh.SSHClientConnection:
    assert seed.entry.ssh is not None
    return await vm.connect(
        host_key=seed.entry.ssh.host_keys[0],
        user=seed.entry.ssh.user,
        private_key=seed.login_private_key,
    )


async def _refuses_what_the_seed_did_not_give(vm: Vm, seed: SiteSeed) -> None:
    """A pinned key the VM does not have, and a login key the seed did not authorise, fail
    at once and say which (the first attempt also waits for sshd to come up)."""
    assert seed.entry.ssh is not None
    _, stranger = ed25519_pair()
    with pytest.raises(VmError, match=r"^host key: the VM alice"):
        await vm.connect(
            host_key=stranger.strip(), user=seed.entry.ssh.user, private_key=seed.login_private_key
        )
    other_login, _ = ed25519_pair()
    with pytest.raises(VmError, match=r"^user key: the VM alice refuses .* 'fedstack'"):
        await vm.connect(
            host_key=seed.host_public_key, user=seed.entry.ssh.user, private_key=other_login
        )


async def _provision_twice(vm: Vm, seed: SiteSeed, conn: asyncssh.SSHClientConnection) -> None:
    first = await run(
        conn, RUN_STDIN, stdin=seed.provision_stdin, what="provisioning", timeout=PROVISION_TIMEOUT
    )
    summary = str(first.stdout).strip().splitlines()[-1]
    assert summary.startswith("fedstack-provision: changed: "), first.stdout
    for part in ("docker-group(fedstack)", "workdir(/srv/fedstack)", "venv", "featurecloud("):
        assert part in summary, summary
    active = await run(conn, "systemctl is-active docker", what="docker's unit")
    assert str(active.stdout).strip() == "active"
    # a new login has the docker group: the controller's user talks to dockerd without sudo
    async with await _login(vm, seed) as fresh:
        info = await run(fresh, "docker info --format '{{.ServerVersion}}'", what="docker info")
        assert str(info.stdout).strip(), info
    checked = await run(conn, RUN_STDIN, stdin=load_script(CHECK_SCRIPT), what="check.sh")
    assert str(checked.stdout).startswith("fedstack-check: docker, python3 and featurecloud")

    # "changes nothing": it says so, and packages, docker's state, the user's groups and
    # every file under the workdir and /usr/local/bin (size, mtime, owner) are as they were
    before = await snapshot(conn, seed.entry.workdir)
    second = await run(
        conn, RUN_STDIN, stdin=seed.provision_stdin, what="provisioning again", timeout=600
    )
    assert str(second.stdout).strip().splitlines() == ["fedstack-provision: changed: nothing"]
    assert await snapshot(conn, seed.entry.workdir) == before


async def _a_failing_step_is_named(
    conn: asyncssh.SSHClientConnection, seed: SiteSeed, fc_version: str
) -> None:
    """A version the index does not have: provisioning fails at its pip step, by name."""
    settings = provision_settings(
        workdir=seed.entry.workdir,
        fc_version="99.0.0",
        docker_required=True,
        pip_index_url=INDEX["fedstack:pipIndexUrl"],
    )
    stdin = render_stdin(settings, load_script(PROVISION_SCRIPT))
    with pytest.raises(VmError, match=r"could not install featurecloud==99\.0\.0"):
        await run(conn, RUN_STDIN, stdin=stdin, what="provisioning", timeout=600)
    # and the host is as the good provisioning left it
    kept = await run(
        conn, RUN_STDIN, stdin=seed.provision_stdin, what="provisioning after a failure"
    )
    assert str(kept.stdout).strip().endswith("changed: nothing"), (fc_version, kept.stdout)


async def _mean_run_with_the_vm_as_a_site(
    vm: Vm, seed: SiteSeed, conn: asyncssh.SSHClientConnection, work: Path
) -> None:
    """fedstack from its wheel in the VM, its controller started by the inventory's command."""
    venv = f"{seed.entry.workdir}/fedstack-venv"
    await run(
        conn,
        f"python3 -m venv {venv} && {venv}/bin/pip install --quiet --no-index --no-compile "
        f"--find-links {VM_WHEELS}/wheels 'fedstack[emulator]'",
        what="installing fedstack from its wheel",
        timeout=PROVISION_TIMEOUT,
    )
    print(f"\nfedstack installed in the VM at {time.strftime('%X')}", flush=True)
    async with running_site() as web:
        port = int(web.url.rsplit(":", 1)[1])
        # the VM reaches no network: its controller reaches the website through this SSH login
        await conn.forward_remote_port("127.0.0.1", port, "127.0.0.1", port)
        fed = await build(work, web.url, local_sites=3)
        try:
            fed.inventory = _with_vm_as_site1(fed.inventory, seed, vm.port, web.url, venv)
            proc = await asyncio.create_subprocess_exec(
                *fed.runner_argv(),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "COLUMNS": "120"},
            )
            try:
                _, err = await asyncio.wait_for(proc.communicate(), RUN_DEADLINE)
            except TimeoutError:
                proc.kill()
                raise VmError(f"the runner: no end within {RUN_DEADLINE:g} s") from None
            if proc.returncode != 0:
                raise VmError(
                    f"runner exit {proc.returncode}:\n{err.decode()[-3000:]}\n"
                    f"{await _diagnosis(conn, seed.entry.workdir, fed.outdir)}"
                )
            assert_completed(fed.outdir / only_run(fed.outdir), ["site1", "site2", "site3"])
        finally:
            for site in fed.inventory.sites[1:]:
                await asyncio.create_subprocess_exec("sh", "-c", site.controller.stop_command)
            kill_processes_under(fed.work)


async def _diagnosis(conn: asyncssh.SSHClientConnection, workdir: str, outdir: Path) -> str:
    """What a failed run left: the VM controller's log and the steps' logs the runner fetched."""
    log = await conn.run(f"tail -n 60 {workdir}/controller.log", check=False)
    fetched = [
        f"{p}:\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(outdir.rglob("log_step*"))
    ]
    text = f"{log.stdout!s}{log.stderr!s}"
    return f"VM controller.log:\n{text}\n" + "\n".join(fetched)


def _with_vm_as_site1(
    inventory: Inventory, seed: SiteSeed, port: int, website_url: str, venv: str
) -> Inventory:
    """The stack's own entry for alice, reached on the forwarded port, running the emulator's
    controller from the VM's venv, standing in for the local site1 of the workflow."""
    entry, *others = inventory.sites
    assert seed.entry.ssh is not None
    vm_site = seed.entry.model_copy(
        update={
            "name": entry.name,
            "fc_user": entry.fc_user,
            "ssh": seed.entry.ssh.model_copy(update={"address": "127.0.0.1", "port": port}),
            "controller": controller_spec(
                seed.entry.controller.data_dir,
                website_url,
                seed.entry.controller.port,
                python=f"{venv}/bin/python",
            ),
        }
    )
    sites = [SiteEntry.model_validate(vm_site.model_dump()), *others]
    return Inventory(version=INVENTORY_VERSION, stack="vm", sites=sites)
