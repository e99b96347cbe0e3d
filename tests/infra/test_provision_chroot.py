"""provision.sh for real, twice, in a throwaway Debian root; and the script's static checks.

The chroot cannot run a Docker engine (no systemd, and services are forbidden there), which is
exactly the case the script must report plainly: first without permission to carry on (exit 3
and the message), then with FEDSTACK_DOCKER_REQUIRED=0 where it provisions everything else.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request

import pytest

from fedinfra.script import (
    CHECK_SCRIPT,
    PROVISION_SCRIPT,
    load_script,
    provision_settings,
    render_stdin,
)
from tests.infra.debroot import MIRROR, debian_root, run_in_root

FC_VERSION = "0.1.0"
WORKDIR = "/srv/fedstack"
DOCKER_MESSAGE = "fedstack-provision: ERROR: Docker engine cannot start here: no systemd"


@pytest.mark.parametrize("name", [PROVISION_SCRIPT, CHECK_SCRIPT])
def test_scripts_pass_shellcheck(name, tmp_path):
    path = tmp_path / name
    path.write_text(load_script(name))
    done = subprocess.run(["shellcheck", "-s", "bash", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _reachable(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=15):  # noqa: S310 (fixed http(s) URLs)
            return None
    except OSError as exc:
        return f"{url}: {exc}"


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(shutil.which("debootstrap") is None, reason="needs debootstrap (make sysdeps)")
def test_provision_runs_twice_in_a_debian_root():
    for url in (f"{MIRROR}/dists/bookworm/Release", "https://pypi.org/simple/featurecloud/"):
        problem = _reachable(url)
        if problem:
            pytest.skip(f"unreachable from this machine (and so from the chroot): {problem}")
    script = load_script(PROVISION_SCRIPT)
    strict = render_stdin(
        provision_settings(workdir=WORKDIR, fc_version=FC_VERSION, docker_required=True), script
    )
    lenient = render_stdin(
        provision_settings(workdir=WORKDIR, fc_version=FC_VERSION, docker_required=False), script
    )
    check = load_script(CHECK_SCRIPT)
    with debian_root() as root:
        # a bare host with provision: false is refused with one line naming what is missing
        bare = run_in_root(root, check)
        assert bare.returncode == 1, bare.stderr
        (line,) = bare.stderr.strip().splitlines()
        assert "lacks: docker" in line and "python3" in line and "featurecloud" in line

        started = time.monotonic()
        first = run_in_root(root, strict)
        first_s = time.monotonic() - started
        report = f"stdout:\n{first.stdout}\nstderr:\n{first.stderr[-4000:]}"
        if "could not install featurecloud" in first.stderr:
            pytest.fail(
                f"PyPI unreachable from the chroot (pip in the chroot uses no proxy): {report}"
            )
        # Docker is installed but cannot run in a chroot: said plainly, with its own exit code.
        assert first.returncode == 3, report
        assert DOCKER_MESSAGE in first.stderr, report
        assert (root / "usr/bin/docker").exists() and (root / "usr/sbin/dockerd").exists()

        second = run_in_root(root, lenient)
        report = f"stdout:\n{second.stdout}\nstderr:\n{second.stderr[-4000:]}"
        assert second.returncode == 0, report
        assert "WARNING: Docker engine cannot start here" in second.stderr, report
        summary = second.stdout.strip().splitlines()[-1]
        assert summary.startswith("fedstack-provision: changed: "), report
        for part in (
            "workdir(/srv/fedstack)",
            "venv",
            f"featurecloud(none->{FC_VERSION})",
            "link(",
        ):
            assert part in summary, summary
        assert (root / "srv/fedstack/venv/bin/featurecloud").exists()
        assert (root / "usr/local/bin/featurecloud").is_symlink()

        started = time.monotonic()
        third = run_in_root(root, lenient)
        third_s = time.monotonic() - started
        report = f"stdout:\n{third.stdout}\nstderr:\n{third.stderr}"
        assert third.returncode == 0, report
        assert third.stdout.strip().splitlines() == ["fedstack-provision: changed: nothing"], report
        assert third_s < 15, f"an idempotent re-run took {third_s:.1f}s"
        version = subprocess.run(
            [
                "chroot",
                str(root),
                "/srv/fedstack/venv/bin/python",
                "-c",
                "import importlib.metadata as m; print(m.version('featurecloud'))",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert version.stdout.strip() == FC_VERSION
        # and the provisioned host passes the opt-out hosts' check
        checked = run_in_root(root, check)
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout.startswith("fedstack-check: docker, python3 and featurecloud present")
        print(f"\nfirst run {first_s:.1f}s, idempotent re-run {third_s:.1f}s")
