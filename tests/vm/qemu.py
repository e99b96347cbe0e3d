"""Boot the cached image under qemu (software emulation) and reach it over SSH.

Direct kernel boot (`-kernel`/`-initrd` from the image, root on the first virtio disk), the
seed ISO as a second virtio disk (cloud-init's NoCloud finds it by its `cidata` label, as it
finds libvirt's CD-ROM), and user-mode networking with `restrict=on`: the VM reaches nothing,
the host reaches its sshd only through the one forwarded loopback port. A qcow2 overlay per
boot keeps the cached base untouched. qemu is killed on the way out, whatever happened; the
serial console stays in a file for whoever reads a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from tests.vm.image import BootImage

#: vCPUs of the VM: two, so cloud-init, sshd and dockerd do not queue behind each other under
#: TCG (qemu then runs one host thread per vCPU; the machine has two cores)
SMP = 2
MEMORY_MIB = 2048
#: the MAC the NIC gets (libvirt's 52:54:00 prefix); the seed matches no MAC, so any would do
MAC = "52:54:00:fe:d5:01"
#: a software-emulated boot of Debian with cloud-init takes 1-3 minutes on a busy machine
BOOT_DEADLINE = 420.0


class VmError(AssertionError):
    """The VM did not do what the seed promised; the message names what and where."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Vm:
    """A running VM: its forwarded SSH port, its console log and its qemu process."""

    name: str
    port: int
    console: Path
    process: asyncio.subprocess.Process

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])

    async def connect(
        self, *, host_key: str, user: str, private_key: str, deadline: float = BOOT_DEADLINE
    ) -> asyncssh.SSHClientConnection:
        """Log in with `host_key` pinned and nothing else accepted; wait for sshd until deadline.

        Refused or dropped connections are retried (sshd is not up yet); a host key that is not
        the pinned one, or a login key the VM refuses, fails at once and says which.
        """
        known: tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]] = (
            [asyncssh.import_public_key(host_key)],
            [],
            [],
        )
        client_key = asyncssh.import_private_key(private_key)
        give_up = time.monotonic() + deadline
        last = "no attempt yet"
        while time.monotonic() < give_up:
            if self.process.returncode is not None:
                raise VmError(
                    f"qemu for {self.name} exited ({self.process.returncode}) while waiting for "
                    f"its sshd; console ({self.console}):\n{self.console_tail()}"
                )
            try:
                return await asyncio.wait_for(
                    asyncssh.connect(
                        "127.0.0.1",
                        self.port,
                        username=user,
                        client_keys=[client_key],
                        known_hosts=known,
                        agent_path=None,
                        config=None,
                    ),
                    30,
                )
            except asyncssh.HostKeyNotVerifiable as exc:
                raise VmError(
                    f"host key: the VM {self.name} at 127.0.0.1:{self.port} does not show the "
                    f"pinned host key ({exc})"
                ) from None
            except asyncssh.PermissionDenied:
                raise VmError(
                    f"user key: the VM {self.name} refuses the login key for user {user!r} "
                    "(not among the seed's authorized keys?)"
                ) from None
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(3)
        raise VmError(
            f"waiting for the VM {self.name}'s sshd on 127.0.0.1:{self.port}: no login within "
            f"{deadline:g} s (last: {last}); console ({self.console}):\n{self.console_tail()}"
        )


def qemu_argv(
    image: BootImage, overlay: Path, seed_iso: Path, port: int, console: Path
) -> list[str]:
    """The qemu command line: TCG, direct kernel boot, virtio disks and NIC, no display."""
    return [
        "qemu-system-x86_64",
        "-accel", "tcg",
        "-machine", "q35",
        # the newest CPU TCG emulates: numpy's wheels need SSE4.2/POPCNT (x86-64-v2)
        "-cpu", "max",
        "-smp", str(SMP),
        "-m", str(MEMORY_MIB),
        "-nodefaults",
        "-display", "none",
        "-no-reboot",
        "-serial", f"file:{console}",
        "-kernel", str(image.kernel),
        "-initrd", str(image.initrd),
        "-append", "root=/dev/vda rw console=ttyS0 panic=-1",
        "-drive", f"file={overlay},if=virtio,format=qcow2",
        "-drive", f"file={seed_iso},if=virtio,format=raw,readonly=on",
        "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", f"virtio-net-pci,netdev=net0,mac={MAC}",
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def booted(name: str, image: BootImage, seed_iso: Path, folder: Path) -> AsyncIterator[Vm]:
    """A VM booting from a fresh overlay of `image` with `seed_iso`; killed on the way out."""
    folder.mkdir(parents=True, exist_ok=True)
    overlay = folder / "root.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.root),
         str(overlay)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    console = folder / "console.log"
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *qemu_argv(image, overlay, seed_iso, port, console),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=open(folder / "qemu.stderr", "wb"),  # noqa: SIM115 (the child keeps it)
    )
    try:
        yield Vm(name, port, console, process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
