"""The exact command strings fedinfra hands pulumi-command, run over a real OpenSSH server
with the host key pinned, the way pulumi-command runs them (one session, the command given to
the login shell, the script on stdin). pulumi-command itself needs its plugin and cannot run
here; this checks everything on our side of it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fedinfra.script import (
    CHECK_SCRIPT,
    PROVISION_SCRIPT,
    RUN_STDIN,
    cleanup_command,
    load_script,
    provision_settings,
    readiness_command,
    render_stdin,
)
from tests.testhosts import test_hosts


def _ssh(host, tmp: Path, command: str, stdin: str | None = None, host_key: str | None = None):
    known = tmp / "known_hosts"
    known.write_text(f"{host.address} {host_key or host.host_key}\n")
    key = tmp / "id"
    key.write_text(host.private_key)
    key.chmod(0o600)
    return subprocess.run(
        [
            "ssh", "-i", str(key), "-p", str(host.port),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "ConnectTimeout=10",
            f"{host.user}@{host.address}", command,
        ],
        input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.netns
def test_byo_commands_over_real_ssh(tmp_path):
    with test_hosts(1) as (host,):
        ready = _ssh(host, tmp_path, readiness_command(cloud_init=False))
        assert ready.returncode == 0 and ready.stdout.startswith("fedstack-ready Linux"), ready

        # a host whose key is not the pinned one is refused before any command runs
        other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        refused = _ssh(host, tmp_path, "true", host_key=other)
        assert refused.returncode == 255 and "Host key verification failed" in refused.stderr

        # settings arrive through stdin: a bad one stops the script before it changes anything
        bad = render_stdin(
            provision_settings(workdir="relative", fc_version="0.1.0", docker_required=True),
            load_script(PROVISION_SCRIPT),
        )
        stopped = _ssh(host, tmp_path, RUN_STDIN, stdin=bad)
        assert stopped.returncode == 2
        assert "FEDSTACK_WORKDIR must be an absolute path, got 'relative'" in stopped.stderr

        # the opt-out check, through `bash -s`, on a host without the FeatureCloud CLI
        checked = _ssh(host, tmp_path, RUN_STDIN, stdin=load_script(CHECK_SCRIPT))
        assert checked.returncode == 1
        assert "featurecloud (pip package featurecloud, on PATH)" in checked.stderr

        # destroy's cleanup removes fedstack's workdir and nothing next to it
        base = Path(host.workdir)
        mine = base / "fedstack"
        (mine / "controller-data").mkdir(parents=True)
        neighbour = base / "partner-data"
        neighbour.mkdir()
        cleanup = cleanup_command(
            workdir=str(mine),
            stop_command="featurecloud controller stop fc-controller",
            controller_name="fc-controller",
        )
        done = _ssh(host, tmp_path, cleanup)
        assert done.returncode == 0, done.stderr
        assert not mine.exists() and neighbour.exists()
