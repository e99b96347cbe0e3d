"""Pure renderers checked by the real tools: cloud-init's schema, the NoCloud seed ISO, bash
reading the rendered stdin, the BYO cleanup on a scratch tree, the inventory builder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from fedinfra.build_inventory import HostFacts, build_inventory, export_inventory, public_view
from fedinfra.cloudinit import render_meta_data, render_user_data
from fedinfra.inventory import Inventory
from fedinfra.script import (
    PROVISION_SCRIPT,
    cleanup_command,
    load_script,
    provision_settings,
    readiness_command,
    render_stdin,
    script_sha256,
)
from tests.infra.harness import ed25519_pair


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["cloud-init", "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="needs cloud-init (make sysdeps)")
@pytest.mark.parametrize("login_user", ["fedstack", None])
def test_user_data_passes_cloud_init_schema(tmp_path, login_user):
    host_private, host_public = ed25519_pair()
    _, login_public = ed25519_pair()
    text = render_user_data(
        hostname="alice",
        host_private_key=host_private,
        host_public_key=host_public,
        login_user=login_user,
        authorized_keys=(login_public,) if login_user else (),
    )
    assert text.startswith("#cloud-config\n")
    (tmp_path / "user-data").write_text(text)
    done = schema_check(tmp_path / "user-data")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Valid cloud-config" in done.stdout
    doc = yaml.safe_load(text)
    assert doc["ssh_keys"]["ed25519_private"] == host_private
    assert doc["ssh_keys"]["ed25519_public"] == host_public.strip()
    assert doc["ssh_genkeytypes"] == ["ed25519"]
    if login_user:
        assert doc["users"][0]["ssh_authorized_keys"] == [login_public.strip()]


def test_schema_check_does_catch_mistakes(tmp_path):
    (tmp_path / "bad").write_text("#cloud-config\nssh_keys: nope\nusers: 7\n")
    assert schema_check(tmp_path / "bad").returncode != 0


@pytest.mark.skipif(shutil.which("genisoimage") is None, reason="needs genisoimage")
def test_seed_iso_builds_like_the_provider_does(tmp_path):
    private, public = ed25519_pair()
    user_data = render_user_data(hostname="bob", host_private_key=private, host_public_key=public)
    (tmp_path / "user-data").write_text(user_data)
    (tmp_path / "meta-data").write_text(render_meta_data(hostname="bob", user_data=user_data))
    iso = tmp_path / "seed.iso"
    # the provider's own invocation (terraform-provider-libvirt 0.8.1 cloudinit_def.go)
    subprocess.run(
        [
            "genisoimage",
            "-output",
            str(iso),
            "-volid",
            "cidata",
            "-joliet",
            "-rock",
            "user-data",
            "meta-data",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    info = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True)
    assert "Volume id: cidata" in info.stdout


def test_meta_data_instance_id_follows_user_data():
    a = render_meta_data(hostname="x", user_data="#cloud-config\na: 1\n")
    b = render_meta_data(hostname="x", user_data="#cloud-config\na: 2\n")
    assert a != b and "local-hostname: x" in a


def test_stdin_settings_arrive_unchanged_in_bash():
    tricky = "https://user:p@ss'w\"$rd`x`@index.example/simple"
    stdin = render_stdin(
        {"PIP_INDEX_URL": tricky, "FEDSTACK_WORKDIR": "/srv/a b"},
        'printf "%s|%s" "$PIP_INDEX_URL" "$FEDSTACK_WORKDIR"',
    )
    done = subprocess.run(["bash", "-s"], input=stdin, capture_output=True, text=True, check=True)
    assert done.stdout == f"{tricky}|/srv/a b"
    with pytest.raises(ValueError):
        render_stdin({"bad name": "x"}, "true")


def test_provision_settings_and_trigger():
    settings = provision_settings(workdir="/srv/f", fc_version="0.1.0", docker_required=False)
    assert settings == {
        "FEDSTACK_WORKDIR": "/srv/f",
        "FEDSTACK_FC_VERSION": "0.1.0",
        "FEDSTACK_DOCKER_REQUIRED": "0",
    }
    script = load_script(PROVISION_SCRIPT)
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    assert "DPkg::Lock::Timeout" in script
    assert script_sha256(script) != script_sha256(script + "\n")


def test_readiness_command_accepts_cloud_init_warnings(tmp_path):
    # a fake cloud-init that reports "done with recoverable errors" (exit 2)
    fake = tmp_path / "cloud-init"
    fake.write_text("#!/bin/sh\nexit 2\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["sh", "-c", readiness_command(cloud_init=True)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("fedstack-ready")
    fake.write_text(
        '#!/bin/sh\n[ "$1" = status ] && [ "$2" = --long ] && echo \'status: error\' >&2\nexit 1\n'
    )
    done = subprocess.run(
        ["sh", "-c", readiness_command(cloud_init=True)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1 and "status: error" in done.stderr


def test_cleanup_touches_only_fedstacks_things(tmp_path):
    home = tmp_path / "home"
    workdir = tmp_path / "srv" / "fedstack"
    (workdir / "controller-data").mkdir(parents=True)
    (workdir / "controller-data" / "result.zip").write_text("r")
    neighbour = tmp_path / "srv" / "other-project"
    neighbour.mkdir()
    home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("featurecloud", "docker"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n')
        (bin_dir / tool).chmod(0o755)
    cmd = cleanup_command(
        workdir=str(workdir),
        stop_command="featurecloud controller stop fc-controller",
        controller_name="fc-controller",
    )
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home)}
    done = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not workdir.exists() and neighbour.exists() and home.exists()
    calls = log.read_text().splitlines()
    assert calls[0] == "featurecloud controller stop fc-controller"
    # docker is only asked about the controller by its exact name, never for all containers
    assert all("fc-controller" in c for c in calls if c.startswith("docker"))
    assert not any(word in cmd for word in ("prune", "$(docker ps -q)", "volume rm"))


def _cleanup_script() -> str:
    return cleanup_command(
        workdir="/srv/fedstack",
        stop_command="featurecloud controller stop fc-controller",
        controller_name="fc-controller",
    )


def test_cleanup_passes_shellcheck(tmp_path):
    path = tmp_path / "cleanup.sh"
    path.write_text(_cleanup_script())
    done = subprocess.run(["shellcheck", "-s", "sh", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cleanup_fails_when_the_controller_container_will_not_go(tmp_path):
    """A container docker lists but cannot remove ends the cleanup non-zero, before anything
    claims success (and before the workdir goes, which the container may still write)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(
        '#!/bin/sh\nif [ "$1" = ps ]; then echo 0123abcd; exit 0; fi\nexit 1\n'
    )
    (bin_dir / "docker").chmod(0o755)
    (bin_dir / "sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(["sh", "-c", _cleanup_script()], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "fedstack-cleanup: ERROR: cannot remove container fc-controller"
    )
    assert "removed" not in done.stdout


@pytest.mark.parametrize("bad", ["/", "/srv", "srv/fedstack", "/srv/fed\nstack"])
def test_cleanup_refuses_non_dedicated_dirs(bad):
    with pytest.raises(ValueError):
        cleanup_command(workdir=bad, stop_command="true", controller_name="fc-controller")


def _hosts() -> list[HostFacts]:
    _, key = ed25519_pair()
    return [
        HostFacts(
            "alice",
            "a@x.org",
            True,
            "10.0.0.2",
            22,
            "fedstack",
            (key,),
            "/srv/fedstack",
            private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nk\n",
        ),
        HostFacts(
            "lab",
            "l@x.org",
            False,
            "192.0.2.1",
            2222,
            "fed",
            (key,),
            "/srv/fedstack",
            private_key_file="/home/me/.ssh/lab",
        ),
    ]


def test_inventory_builder_makes_a_valid_versioned_inventory():
    inv = build_inventory(
        stack="sim",
        hosts=_hosts(),
        passwords={"a@x.org": "pw1"},
        controller_name="fc-controller",
        controller_port=8000,
    )
    data = export_inventory(inv)
    again = Inventory.model_validate(data)
    assert again.version == 1 and again.coordinator.name == "alice"
    assert data["credentials"] == {"a@x.org": "pw1"}
    site = again.site("alice")
    assert site.controller.data_dir == "/srv/fedstack/controller-data"
    assert site.controller.start_command.startswith("featurecloud controller start fc-controller")
    lab = again.site("lab")
    assert lab.ssh is not None and lab.ssh.port == 2222
    view = public_view(again)
    assert "pw1" not in repr(view) and "PRIVATE KEY" not in repr(view)


def test_inventory_builder_refuses_strays_and_bad_hosts():
    with pytest.raises(ValueError, match=r"fcPasswords has users no site uses: z@x\.org"):
        build_inventory(
            stack="s",
            hosts=_hosts(),
            passwords={"z@x.org": "p"},
            controller_name="c",
            controller_port=8000,
        )
    bad = [h for h in _hosts()]
    bad[1] = HostFacts(
        "lab",
        "l@x.org",
        False,
        "192.0.2.1",
        22,
        "fed",
        ("nonsense",),
        "/srv/f",
        private_key_file="/k",
    )
    with pytest.raises(ValidationError):
        build_inventory(
            stack="s", hosts=bad, passwords=None, controller_name="c", controller_port=8000
        )
