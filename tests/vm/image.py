"""A bootable Debian disk image for the VM test: kernel, initrd and an ext4 root, cached.

Built from the cached debootstrap root of the provisioning test (tests/infra/debroot.py) plus
the packages below, installed with apt in a chroot; then `mkfs.ext4 -d` turns the folder into
a raw ext4 image that qemu boots directly (`-kernel`/`-initrd` from the image's /boot, root on a
virtio disk): no partitions, no loop mounts, no boot loader. Nothing a VM gets from its seed is
baked in: SSH host keys, machine-id, network configuration, users and keys are removed or never
made, so cloud-init and fedinfra's seed must provide them.

The finished image sits in the cache dir under a name keyed by the package list and this file's
text: the first run builds it (minutes), later runs find it at once. Each test boots a qcow2
overlay of it, so the cached base stays clean.
"""

from __future__ import annotations

import hashlib
import inspect
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.infra.debroot import CACHE, _assert_no_mounts_under, cached_root_tarball

#: what the image carries beyond debootstrap's minbase: a kernel for virtio disks, systemd as
#: PID 1, cloud-init with ifupdown + DHCP (Debian 12 cloud images' network stack), sshd, sudo
#: for the seed's sudoer, and what provision.sh would otherwise install from the mirror
PACKAGES = (
    "linux-image-cloud-amd64",
    "systemd-sysv",
    "cloud-init",
    "ifupdown",
    "isc-dhcp-client",
    "openssh-server",
    "sudo",
    "docker.io",
    "python3",
    "python3-venv",
    "ca-certificates",
    "iproute2",
    # what a cloud image has and cloud-init's modules use: the system bus (systemctl as a
    # non-root user, logind) and locale generation (cc_locale sets en_US.UTF-8)
    "dbus",
    "locales",
)
#: the root filesystem's size; the test installs fedstack's wheels and a venv on top
IMAGE_SIZE = "4G"
BUILD_TIMEOUT = 1800.0


@dataclass(frozen=True)
class BootImage:
    """A cached image: the raw ext4 root and the kernel and initrd to boot it with."""

    root: Path
    kernel: Path
    initrd: Path


def image_key() -> str:
    """The cache key: the packages, the size and the build steps' code (a changed build makes a
    new image; a changed comment elsewhere in this file does not)."""
    steps = (cached_image, _install_packages, _strip_first_boot_state, _copy_boot_files)
    text = "\n".join([*PACKAGES, IMAGE_SIZE, *(inspect.getsource(f) for f in steps)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def cached_image() -> BootImage:
    """The image for the current key, built on first use; images of other keys are pruned."""
    folder = CACHE / f"vm-image-{image_key()}"
    image = BootImage(folder / "root.img", folder / "vmlinuz", folder / "initrd.img")
    if image.root.is_file():
        return image
    CACHE.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix="vm-image-build-", dir=CACHE))
    try:
        root = build / "root"
        root.mkdir()
        subprocess.run(
            ["tar", "-C", str(root), "--numeric-owner", "-xf", str(cached_root_tarball())],
            check=True,
        )
        _install_packages(root)
        _strip_first_boot_state(root)
        out = build / "out"
        out.mkdir()
        _copy_boot_files(root, out)
        subprocess.run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-L",
                "fedstack-root",
                "-d",
                str(root),
                str(out / "root.img"),
                IMAGE_SIZE,
            ],
            check=True,
            capture_output=True,
            timeout=BUILD_TIMEOUT,
        )
        out.rename(folder)
    finally:
        _assert_no_mounts_under(build)
        shutil.rmtree(build, ignore_errors=True)
    for old in CACHE.glob("vm-image-*"):
        if old != folder and not old.name.startswith("vm-image-build-"):
            shutil.rmtree(old, ignore_errors=True)
    return image


def _install_packages(root: Path) -> None:
    """apt-get install in the chroot, with services forbidden and the apt archive cached."""
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# no services while the image is built\nexit 101\n")
    policy.chmod(0o755)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    archives = CACHE / "apt-archives"
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    mounts = [root / "var/cache/apt/archives", root / "proc"]
    subprocess.run(["mount", "--bind", str(archives), str(mounts[0])], check=True)
    try:
        subprocess.run(["mount", "-t", "proc", "proc", str(mounts[1])], check=True)
        script = (
            "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get -qq update; "
            "apt-get -qq install -y --no-install-recommends " + " ".join(PACKAGES) + "; "
            # the locale cloud-init sets by default, made as Ubuntu's image has it: Debian's
            # locale-gen ignores the name cloud-init passes and makes only what locale.gen lists
            "sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen; locale-gen"
        )
        done = subprocess.run(
            ["chroot", str(root), "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"apt-get install in the image failed: {done.stderr[-3000:]}")
    finally:
        for point in reversed(mounts):
            if subprocess.run(["umount", str(point)], check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], check=False)
    policy.unlink()


def _strip_first_boot_state(root: Path) -> None:
    """Remove what a first boot must make itself, so only the seed can provide it."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/hostname").write_text("localhost\n")
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
    (root / "etc/fstab").write_text("LABEL=fedstack-root / ext4 rw,errors=remount-ro 0 1\n")
    # loopback only: every other interface is cloud-init's to configure, from the seed
    interfaces = root / "etc/network/interfaces"
    interfaces.write_text(
        "# cloud-init writes the interfaces it configures into interfaces.d\n"
        "source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n"
    )


def _copy_boot_files(root: Path, out: Path) -> None:
    """The image's own kernel and initrd (made by initramfs-tools in the chroot)."""
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if len(kernels) != 1 or len(initrds) != 1:
        raise RuntimeError(f"expected one kernel and one initrd in the image: {kernels} {initrds}")
    shutil.copy(kernels[0], out / "vmlinuz")
    shutil.copy(initrds[0], out / "initrd.img")
