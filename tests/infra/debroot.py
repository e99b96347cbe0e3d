"""A throwaway Debian root for running provision.sh for real.

`debootstrap --variant=minbase bookworm` takes minutes, so the finished root is cached as a
tarball under a cache dir (default /var/cache/fedstack-test, env FEDSTACK_TEST_CACHE) keyed by
date: the first run of a day builds it, later runs unpack it in seconds. The apt archive and
pip cache of the root are bind-mounted from the cache dir as well, so repeated test runs do not
download docker.io and featurecloud's wheels again (they still install them for real).

The root trusts the local CAs of the test machine (/usr/local/share/ca-certificates), as a
host behind an institution's TLS proxy would be set up by its administrator. The root gets a
`policy-rc.d` that forbids starting services, as Debian's container images
have: docker.io's postinst must not start a dockerd from inside the chroot on the test machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
CACHE = Path(os.environ.get("FEDSTACK_TEST_CACHE", "/var/cache/fedstack-test"))
PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def cached_root_tarball(today: dt.date | None = None) -> Path:
    """The day's debootstrapped root as a tarball, built on first use; older ones are pruned."""
    today = today or dt.datetime.now(dt.UTC).date()
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"{SUITE}-minbase-{today:%Y%m%d}.tar"
    if tarball.exists():
        return tarball
    build = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=CACHE))
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(build / "root"), MIRROR],
            check=True,
            capture_output=True,
            timeout=1800,
        )
        partial = tarball.with_suffix(".tar.partial")
        subprocess.run(
            ["tar", "-C", str(build / "root"), "--numeric-owner", "-cf", str(partial), "."],
            check=True,
        )
        partial.rename(tarball)
    finally:
        _assert_no_mounts_under(build)
        shutil.rmtree(build, ignore_errors=True)
    for old in CACHE.glob(f"{SUITE}-minbase-*.tar"):
        if old != tarball:
            old.unlink(missing_ok=True)
    return tarball


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point == prefix or mount_point.startswith(prefix + "/"):
            found.append(mount_point)
    return found


def _assert_no_mounts_under(path: Path) -> None:
    left = _mounts_under(path)
    if left:
        raise RuntimeError(f"still mounted under {path}, not removing it: {left}")


@contextlib.contextmanager
def debian_root() -> Iterator[Path]:
    """A fresh root unpacked from the cache, with proc and the caches mounted; all undone after."""
    tarball = cached_root_tarball()
    root = Path(tempfile.mkdtemp(prefix="fedstack-root-", dir="/var/tmp"))
    mounted: list[Path] = []
    try:
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-xf", str(tarball)], check=True)
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\n# no services inside a test chroot\nexit 101\n")
        policy.chmod(0o755)
        shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
        # The root trusts what this machine trusts (a TLS-inspecting egress proxy's CA, say),
        # as an administrator would set a host up; ca-certificates picks these files up.
        local_cas = root / "usr/local/share/ca-certificates"
        local_cas.mkdir(parents=True, exist_ok=True)
        for ca in Path("/usr/local/share/ca-certificates").glob("*.crt"):
            shutil.copy(ca, local_cas / ca.name)
        for name, target in (
            ("apt-archives", "var/cache/apt/archives"),
            ("pip-cache", "root/.cache/pip"),
        ):
            source = CACHE / name
            (source / "partial").mkdir(parents=True, exist_ok=True)
            (root / target).mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", str(source), str(root / target)], check=True)
            mounted.append(root / target)
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        mounted.append(root / "proc")
        yield root
    finally:
        for point in reversed(mounted):
            if subprocess.run(["umount", str(point)], check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], check=False)
        _assert_no_mounts_under(root)
        shutil.rmtree(root, ignore_errors=True)


def run_in_root(root: Path, stdin: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """`bash -s` inside the root with a clean environment (plus any proxy settings of ours)."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        **{k: v for k, v in os.environ.items() if k in PROXY_VARS},
    }
    return subprocess.run(
        ["chroot", str(root), "bash", "-s"],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
