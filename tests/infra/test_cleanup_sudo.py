"""Destroy's cleanup on a bring-your-own host, run for real as the non-root login it runs as.

Provisioning made the workdir with sudo under a root-owned parent (like /srv), and the
controller's container wrote root's files into it, so a plain `rm -rf` by the login user cannot
remove it. The rendered cleanup script is run over a real OpenSSH test host as a non-root user,
once with passwordless sudo (everything removed, exit 0) and once without (exit non-zero, one
line on stderr, nothing claimed): `pulumi destroy` must never report a host it did not clean.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedinfra.script import cleanup_command
from tests.testhosts import NetnsHost, test_hosts

pytestmark = pytest.mark.netns

_users = itertools.count()


@contextlib.contextmanager
def unix_user(*, sudo: bool) -> Iterator[str]:
    """A throwaway login user (key login allowed: its password is '*', not locked '!'),
    with passwordless sudo or none; removed afterwards."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root and useradd to make a login user")
    if sudo and shutil.which("sudo") is None:
        pytest.skip("needs sudo (make sysdeps)")
    name = f"fst{os.getpid()}c{next(_users)}"
    sudoers = Path("/etc/sudoers.d") / name
    subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True, capture_output=True)
    try:
        subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
        if sudo:
            sudoers.write_text(f"{name} ALL=(ALL) NOPASSWD:ALL\n")
            sudoers.chmod(0o440)
        yield name
    finally:
        sudoers.unlink(missing_ok=True)
        subprocess.run(["userdel", "-r", name], check=False, capture_output=True)


@contextlib.contextmanager
def provisioned_workdir() -> Iterator[tuple[Path, Path]]:
    """(workdir, neighbour) under a root-owned 0755 parent, as provisioning leaves them: the
    workdir and the controller's results root's, a partner's data beside them."""
    base = Path(tempfile.mkdtemp(prefix="fedstack-cleanup-", dir="/var/tmp"))
    try:
        base.chmod(0o755)
        workdir = base / "fedstack"
        (workdir / "controller-data" / "results").mkdir(parents=True)
        (workdir / "controller-data" / "results" / "mean.csv").write_text("1.5\n")
        (workdir / "venv").mkdir()
        neighbour = base / "partner-data"
        neighbour.mkdir()
        (neighbour / "cohort.csv").write_text("x\n")
        yield workdir, neighbour
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _ssh_as(
    host: NetnsHost, user: str, tmp: Path, command: str
) -> subprocess.CompletedProcess[str]:
    """The command given to the user's login shell, as pulumi-command runs a delete."""
    # sshd reads the authorized key (the test host's, for every user) as that user
    for path in (host.root.parent, host.root):
        path.chmod(0o755)
    (host.root / "userkey.pub").chmod(0o644)
    known = tmp / "known_hosts"
    known.write_text(f"{host.address} {host.host_key}\n")
    key = tmp / "id"
    key.write_text(host.private_key)
    key.chmod(0o600)
    return subprocess.run(
        [
            "ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "ConnectTimeout=10",
            f"{user}@{host.address}", command,
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _cleanup(workdir: Path) -> str:
    return cleanup_command(
        workdir=str(workdir),
        stop_command="featurecloud controller stop fc-controller",
        controller_name="fc-controller",
    )


def test_cleanup_as_a_sudoer_removes_what_provisioning_made(tmp_path):
    with test_hosts(1) as (host,), unix_user(sudo=True) as user, provisioned_workdir() as dirs:
        workdir, neighbour = dirs
        done = _ssh_as(host, user, tmp_path, _cleanup(workdir))
        assert done.returncode == 0, done.stderr + host.sshd_log.read_text()[-800:]
        assert done.stdout.strip().endswith(f"fedstack-cleanup: removed {workdir}")
        assert not workdir.exists()
        assert (neighbour / "cohort.csv").exists()


def test_cleanup_without_sudo_fails_loudly_and_claims_nothing(tmp_path):
    with test_hosts(1) as (host,), unix_user(sudo=False) as user, provisioned_workdir() as dirs:
        workdir, neighbour = dirs
        done = _ssh_as(host, user, tmp_path, _cleanup(workdir))
        assert done.returncode != 0, host.sshd_log.read_text()[-800:]
        assert f"fedstack-cleanup: ERROR: cannot remove {workdir}" in done.stderr, (
            host.sshd_log.read_text()[-800:]
        )
        assert "removed" not in done.stdout
        assert (workdir / "controller-data" / "results" / "mean.csv").exists()
        assert neighbour.exists()
