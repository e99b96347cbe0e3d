"""Commands on the booted VM, each with a deadline and a failure that says what failed."""

from __future__ import annotations

import shlex
from pathlib import Path

import asyncssh

from tests.vm.qemu import VmError

#: the VM's pip under software emulation unpacks and byte-compiles pandas, numpy, ...
PROVISION_TIMEOUT = 1200.0
SHORT = 120.0

#: what the second provisioning must leave as it found it: packages, docker's unit state,
#: the login user's groups, and every file fedstack owns (path, size, mtime)
SNAPSHOT = (
    "dpkg-query -W -f '${Package} ${Version}\\n'; "
    "systemctl is-enabled docker; systemctl is-active docker; id -nG; "
    "sudo -n find {workdir} /usr/local/bin -printf '%p %s %T@ %u\\n' | sort"
)


async def run(
    conn: asyncssh.SSHClientConnection,
    command: str,
    *,
    what: str,
    stdin: str | None = None,
    timeout: float = SHORT,
) -> asyncssh.SSHCompletedProcess:
    """`command` on the VM; a non-zero exit or a missed deadline fails naming `what`."""
    try:
        done = await conn.run(command, input=stdin, timeout=timeout, check=False)
    except asyncssh.TimeoutError:
        raise VmError(f"{what}: no end within {timeout:g} s on the VM") from None
    if done.exit_status != 0:
        raise VmError(
            f"{what} failed (exit {done.exit_status}): {_error_line(str(done.stderr))}\n"
            f"stdout: {str(done.stdout)[-2000:]}\nstderr: {str(done.stderr)[-4000:]}"
        )
    return done


def _error_line(stderr: str) -> str:
    """The provisioning script's own error line when it wrote one, else stderr's last line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR:" in line]
    return (errors or lines or ["(no stderr)"])[-1]


async def upload_tree(conn: asyncssh.SSHClientConnection, local: Path, remote: str) -> None:
    """Copy a folder to the VM over SFTP (the VM reaches no network of its own)."""
    await run(conn, f"mkdir -p {shlex.quote(remote)}", what="making the wheel folder")
    async with conn.start_sftp_client() as sftp:
        for item in sorted(local.iterdir()):
            await sftp.put(str(item), f"{remote}/{item.name}", recurse=True)


async def snapshot(conn: asyncssh.SSHClientConnection, workdir: str) -> str:
    done = await run(conn, SNAPSHOT.replace("{workdir}", shlex.quote(workdir)), what="snapshot")
    return str(done.stdout)
