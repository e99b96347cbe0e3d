"""Bad input to `python -m runner`: one line naming what and where, exit 2, nothing left.

Each case changes one thing in a working setup (two local sites on one emulated website shared
by the module) and runs the CLI's real `main()`. Nothing left means: no run folder under the
workflow's outdir and no new project for either user on the website.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.cli import main
from tests.emulator_process import emulator_process
from tests.runner.federation import Federation, build


@dataclass
class World:
    fed: Federation
    url: str
    inventory: dict[str, Any]
    tokens: dict[str, str]

    def projects(self) -> int:
        total = 0
        for token in self.tokens.values():
            r = httpx.get(f"{self.url}/api/projects/", headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()
            total += len(r.json())
        return total


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("bad-inputs")
    with emulator_process("site") as url:
        fed = asyncio.run(build(work / "fed", url, local_sites=2))
        tokens = {}
        for user, password in fed.passwords.items():
            r = httpx.post(
                f"{url}/api/auth/login/",
                json={"username": user, "password": password.get_secret_value()},
            )
            tokens[user] = r.json()["access"]
        yield World(fed, url, fed.inventory.to_json_dict(reveal_secrets=True), tokens)


class Kit:
    """One case's inputs, in its own folder: a copy of the working ones, changed by the case."""

    def __init__(self, world: World, tmp: Path) -> None:
        self.world = world
        self.tmp = tmp
        self.out = tmp / "out"
        fed = world.fed
        self.data = {name: fed.work / "input" / f"{name}.csv" for name in ("site1", "site2")}
        self.config = fed.work / "config.yml"
        self.inv_data: Any = copy.deepcopy(world.inventory)
        self.wf_text = self.workflow()
        self.env_text = "".join(f"{u}={p.get_secret_value()}\n" for u, p in fed.passwords.items())
        self.extra: list[str] = []
        self.website_url = world.url
        self.inv_path: Path | None = None
        self.wf_path: Path | None = None
        self.env_path: Path | None = None

    def workflow(self, top: str = 'app = "mean-app"', site1: str | None = None) -> str:
        sites = {
            name: f'files = [{{ path = "{path}", as = "data.csv" }}]'
            for name, path in self.data.items()
        }
        if site1 is not None:
            sites["site1"] = site1
        body = "\n".join(f"[sites.{n}]\n{v}\n" for n, v in sites.items())
        return f'{top}\nconfig = "{self.config}"\ndeadline = "2m"\noutdir = "{self.out}"\n\n{body}'

    def site(self, i: int) -> dict[str, Any]:
        sites: list[dict[str, Any]] = self.inv_data["sites"]
        return sites[i]

    def argv(self) -> list[str]:
        inv = self.inv_path or self.tmp / "inventory.json"
        if self.inv_path is None:
            inv.write_text(json.dumps(self.inv_data))
        wf = self.wf_path or self.tmp / "workflow.toml"
        if self.wf_path is None:
            wf.write_text(self.wf_text)
        env = self.env_path or self.tmp / ".env"
        if self.env_path is None:
            env.write_text(self.env_text)
            env.chmod(0o600)
        return [
            "--inventory", str(inv), "--workflow", str(wf), "--env-file", str(env),
            "--website-url", self.website_url, *self.extra,
        ]  # fmt: skip


Case = Callable[[Kit], object]


def fifo(kit: Kit, name: str) -> Path:
    path = kit.tmp / name
    os.mkfifo(path)
    return path


def sparse(kit: Kit, name: str, size: int) -> Path:
    path = kit.tmp / name
    with path.open("wb") as f:
        f.truncate(size)
    return path


def folder(kit: Kit, name: str) -> Path:
    path = kit.tmp / name
    path.mkdir()
    return path


def text(kit: Kit, name: str, body: str) -> Path:
    path = kit.tmp / name
    path.write_text(body)
    return path


def binary(kit: Kit, name: str) -> Path:
    path = kit.tmp / name
    path.write_bytes(b"\xff\xfe\x00bad")
    path.chmod(0o600)
    return path


def top(kit: Kit, line: str) -> None:
    kit.wf_text = kit.workflow(top=line)


def deadline(kit: Kit, value: str) -> None:
    replace(kit, 'deadline = "2m"', f"deadline = {value}")


def key(kit: Kit, line: str) -> None:
    """An extra top-level line (before the tables)."""
    kit.wf_text = line + "\n" + kit.wf_text


def replace(kit: Kit, old: str, new: str) -> None:
    assert old in kit.wf_text
    kit.wf_text = kit.wf_text.replace(old, new, 1)


def site1(kit: Kit, body: str) -> None:
    kit.wf_text = kit.workflow(site1=body)


def set_wf(kit: Kit, path: Path) -> None:
    kit.wf_path = path


def set_inv(kit: Kit, path: Path) -> None:
    kit.inv_path = path


def set_env(kit: Kit, path: Path) -> None:
    kit.env_path = path


def ctl(kit: Kit, i: int, **changes: Any) -> None:
    kit.site(i)["controller"].update(changes)


def ssh_pair(kit: Kit, *, port2: int = 8001, data2: str = "/b") -> dict[str, Any]:
    """Both sites over SSH to one host; the first site's ssh block, to change further."""
    for i, (port, data) in enumerate(((8000, "/srv/fc/data"), (port2, data2))):
        s = kit.site(i)
        s["transport"] = "ssh"
        s["ssh"] = {
            "address": "10.0.0.5",
            "user": "root",
            "private_key_file": "/nonexistent/key",
            "host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE"],
        }
        s["controller"].update(port=port, data_dir=data)
    block: dict[str, Any] = kit.site(0)["ssh"]
    return block


def deep_json(kit: Kit) -> Path:
    path = kit.tmp / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    return path


def others_project(kit: Kit) -> None:
    """A project of site2's user, which site1's (the coordinator's) cannot coordinate."""
    token = kit.world.tokens[kit.site(1)["fc_user"]]
    r = httpx.post(
        f"{kit.world.url}/api/projects/",
        json={"name": "not yours", "description": "", "status": ""},
        headers={"Authorization": f"Bearer {token}"},
    )
    r.raise_for_status()
    top(kit, f"project_id = {r.json()['id']}")


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WF = "workflow.toml"
# (id, the change, a fragment of the one line, exit code)
CASES: list[tuple[str, Case, str, int]] = [
    # --- the workflow file: reading it
    ("wf-dev-zero", lambda k: set_wf(k, Path("/dev/zero")), "not a regular file", 2),
    ("wf-fifo", lambda k: set_wf(k, fifo(k, WF)), "not a regular file", 2),
    ("wf-folder", lambda k: set_wf(k, folder(k, WF)), "is a folder", 2),
    ("wf-missing", lambda k: set_wf(k, k.tmp / "none.toml"), "workflow file not found", 2),
    ("wf-huge", lambda k: set_wf(k, sparse(k, WF, 2 << 20)), "over 1048576", 2),
    ("wf-not-utf8", lambda k: set_wf(k, binary(k, WF)), "not UTF-8", 2),
    ("wf-not-toml", lambda k: setattr(k, "wf_text", "app = = 1"), "not valid TOML", 2),
    ("wf-deep-toml", lambda k: key(k, "x = " + "[" * 200_000), "TOML", 2),
    ("wf-ten-mb-slug", lambda k: top(k, 'app = "' + "a" * 10_000_000 + '"'), "over 1048576", 2),
    # --- deadline
    ("deadline-400-zeros", lambda k: deadline(k, "1" + "0" * 400), "at most 7 days", 2),
    ("deadline-320-digit-h", lambda k: deadline(k, f'"1{"0" * 320}h"'), "duration", 2),
    ("deadline-320-digit-m", lambda k: deadline(k, f'"{"9" * 320}m"'), "duration", 2),
    ("deadline-nan", lambda k: deadline(k, "nan"), "finite", 2),
    ("deadline-inf", lambda k: deadline(k, "inf"), "finite", 2),
    ("deadline-minus-inf", lambda k: deadline(k, "-inf"), "finite", 2),
    ("deadline-float-huge", lambda k: deadline(k, "1e308"), "at most 7 days", 2),
    ("deadline-zero", lambda k: deadline(k, "0"), "longer than zero", 2),
    ("deadline-negative", lambda k: deadline(k, "-5"), "longer than zero", 2),
    ("deadline-empty", lambda k: deadline(k, '""'), "duration", 2),
    ("deadline-word", lambda k: deadline(k, '"soon"'), "duration", 2),
    ("deadline-bool", lambda k: deadline(k, "true"), "duration", 2),
    ("deadline-list", lambda k: deadline(k, "[1]"), "duration", 2),
    ("deadline-days", lambda k: deadline(k, '"10d"'), "duration", 2),
    ("deadline-no-unit", lambda k: deadline(k, '"1h30"'), "duration", 2),
    ("deadline-too-long", lambda k: deadline(k, '"200h"'), "at most 7 days", 2),
    ("deadline-newline", lambda k: deadline(k, '"30m\\nx"'), "duration", 2),
    # --- outdir
    ("outdir-proc", lambda k: replace(k, f'outdir = "{k.out}"', 'outdir = "/proc/x"'), "/proc", 2),
    (
        "outdir-file",
        lambda k: replace(k, f'outdir = "{k.out}"', f'outdir = "{k.config}"'),
        "is not a folder",
        2,
    ),
    (
        "outdir-under-file",
        lambda k: replace(k, f'outdir = "{k.out}"', f'outdir = "{k.config}/x"'),
        "not a folder",
        2,
    ),
    ("outdir-empty", lambda k: replace(k, f'outdir = "{k.out}"', 'outdir = ""'), "outdir", 2),
    (
        "outdir-newline",
        lambda k: replace(k, f'outdir = "{k.out}"', f'outdir = "{k.out}\\nx"'),
        "newline",
        2,
    ),
    (
        "outdir-long",
        lambda k: replace(k, f'outdir = "{k.out}"', f'outdir = "{"x" * 5000}"'),
        "outdir",
        2,
    ),
    (
        "outdir-no-such-user",
        lambda k: replace(k, f'outdir = "{k.out}"', 'outdir = "~nosuchuser/runs"'),
        "field outdir",
        2,
    ),
    (
        "outdir-name-too-long",
        lambda k: replace(k, f'outdir = "{k.out}"', f'outdir = "{k.tmp}/{"n" * 300}"'),
        "File name too long",
        2,
    ),
    ("file-no-such-user", lambda k: site1(k, 'files = ["~nosuchuser/a.csv"]'), "cannot be used", 2),
    (
        "file-name-too-long",
        lambda k: site1(k, f'files = [{{ path = "{"n" * 300}.csv", as = "d.csv" }}]'),
        "too long",
        2,
    ),
    (
        "file-nul",
        lambda k: site1(k, 'files = [{ path = "/tmp/a\\u0000b.csv", as = "d.csv" }]'),
        "newline or NUL",
        2,
    ),
    (
        "config-name-too-long",
        lambda k: replace(k, f'config = "{k.config}"', f'config = "{"c" * 300}"'),
        "too long",
        2,
    ),
    (
        "arg-outdir-no-such-user",
        lambda k: k.extra.extend(["--outdir", "~nosuchuser/x"]),
        "--outdir",
        2,
    ),
    ("outdir-int", lambda k: replace(k, f'outdir = "{k.out}"', "outdir = 5"), "outdir", 2),
    # --- app and project
    ("app-long", lambda k: top(k, f'app = "{"a" * 500}"'), "not an app slug", 2),
    ("app-newline", lambda k: top(k, 'app = "mean-app\\n"'), "not an app slug", 2),
    ("app-space", lambda k: top(k, 'app = "mean app"'), "not an app slug", 2),
    ("app-empty", lambda k: top(k, 'app = ""'), "field app", 2),
    ("app-int", lambda k: top(k, "app = 5"), "field app", 2),
    ("app-and-project", lambda k: top(k, 'app = "mean-app"\nproject_id = 3'), "not both", 2),
    ("no-app-no-project", lambda k: top(k, ""), "exactly one of app", 2),
    ("project-zero", lambda k: top(k, "project_id = 0"), "project_id", 2),
    ("project-negative", lambda k: top(k, "project_id = -1"), "project_id", 2),
    ("project-string", lambda k: top(k, 'project_id = "x"'), "project_id", 2),
    ("project-huge", lambda k: top(k, "project_id = " + "9" * 30), "project_id", 2),
    ("project-float", lambda k: top(k, "project_id = 1.5"), "project_id", 2),
    # --- keys and tables
    ("unknown-top-key", lambda k: key(k, "colour = 1"), "unknown key (known: app", 2),
    ("unknown-site-key", lambda k: site1(k, "filez = []"), "unknown key (known: files", 2),
    (
        "unknown-file-key",
        lambda k: site1(k, f'files = [{{ path = "{k.data["site1"]}", at = "x" }}]'),
        "unknown key (known: path, as)",
        2,
    ),
    (
        "unknown-unpack-key",
        lambda k: key(k, "unpack = { members = 3 }"),
        "unknown key (known: member",
        2,
    ),
    ("unpack-zero", lambda k: key(k, "unpack = { member = 0 }"), "more than 0 bytes", 2),
    ("unpack-bad-unit", lambda k: key(k, 'unpack = { zip = "1XB" }'), "not a size", 2),
    ("unpack-negative", lambda k: key(k, "unpack = { run = -1 }"), "more than 0 bytes", 2),
    ("unpack-too-big", lambda k: key(k, 'unpack = { run = "2048TiB" }'), "at most 1 PiB", 2),
    ("unpack-not-table", lambda k: key(k, "unpack = 5"), "unpack", 2),
    ("unpack-float", lambda k: key(k, "unpack = { zip = 1.5 }"), "size", 2),
    ("sites-missing", lambda k: setattr(k, "wf_text", 'app = "mean-app"\n'), "sites", 2),
    ("sites-empty", lambda k: setattr(k, "wf_text", 'app = "mean-app"\nsites = {}\n'), "sites", 2),
    (
        "site-not-in-inventory",
        lambda k: setattr(k, "wf_text", k.wf_text + '[sites.site9]\nhost_files = ["/x"]\n'),
        "not in the inventory",
        2,
    ),
    (
        "site-missing",
        lambda k: setattr(k, "wf_text", k.wf_text.split("[sites.site2]")[0]),
        "no data for 'site2'",
        2,
    ),
    (
        "site-name-newline",
        lambda k: setattr(k, "wf_text", k.wf_text + '[sites."site1\\n"]\nhost_files = ["/x"]\n'),
        "site name",
        2,
    ),
    (
        "site-name-upper",
        lambda k: setattr(k, "wf_text", k.wf_text + '[sites.SITE1]\nhost_files = ["/x"]\n'),
        "site name",
        2,
    ),
    (
        "site-name-long",
        lambda k: setattr(k, "wf_text", k.wf_text + f'[sites.{"s" * 300}]\nhost_files = ["/x"]\n'),
        "site name",
        2,
    ),
    ("site-no-data", lambda k: site1(k, "files = []"), "no data", 2),
    ("file-missing", lambda k: site1(k, 'files = ["/nonexistent.csv"]'), "does not exist", 2),
    ("file-folder", lambda k: site1(k, f'files = ["{k.tmp}"]'), "not a regular file", 2),
    ("file-fifo", lambda k: site1(k, f'files = ["{fifo(k, "d.csv")}"]'), "not a regular file", 2),
    ("file-empty-path", lambda k: site1(k, 'files = [""]'), "files[0]", 2),
    ("file-int", lambda k: site1(k, "files = [5]"), "files[0]", 2),
    ("files-not-list", lambda k: site1(k, 'files = "x.csv"'), "files", 2),
    (
        "as-newline",
        lambda k: site1(k, f'files = [{{ path = "{k.data["site1"]}", as = "data.csv\\n" }}]'),
        "plain file name",
        2,
    ),
    (
        "as-dotdot",
        lambda k: site1(k, f'files = [{{ path = "{k.data["site1"]}", as = ".." }}]'),
        "plain file name",
        2,
    ),
    (
        "as-slash",
        lambda k: site1(k, f'files = [{{ path = "{k.data["site1"]}", as = "../x" }}]'),
        "plain file name",
        2,
    ),
    (
        "as-empty",
        lambda k: site1(k, f'files = [{{ path = "{k.data["site1"]}", as = "" }}]'),
        "plain file name",
        2,
    ),
    (
        "as-long",
        lambda k: site1(k, f'files = [{{ path = "{k.data["site1"]}", as = "{"a" * 200}" }}]'),
        "plain file name",
        2,
    ),
    (
        "as-config",
        lambda k: site1(k, f'files = [{{ path = "{k.data["site1"]}", as = "config.yml" }}]'),
        "the app's config",
        2,
    ),
    (
        "as-twice",
        lambda k: site1(k, f'files = ["{k.data["site1"]}", "{k.data["site1"]}"]'),
        "two files would arrive",
        2,
    ),
    (
        "file-name-newline",
        lambda k: site1(k, "files = [{}]".format(json.dumps(str(text(k, "da\nta.csv", "x,y"))))),
        "newline or NUL",
        2,
    ),
    (
        "file-name-space",
        lambda k: site1(k, "files = [{}]".format(json.dumps(str(text(k, "da ta.csv", "x,y"))))),
        "not a plain file name",
        2,
    ),
    (
        "host-file-name-newline",
        lambda k: site1(k, 'host_files = ["/srv/da\\nta.csv"]'),
        "newline or NUL",
        2,
    ),
    ("host-file-relative", lambda k: site1(k, 'host_files = ["data.csv"]'), "absolute", 2),
    (
        "host-file-missing-local",
        lambda k: site1(k, 'host_files = ["/nonexistent/cohort.csv"]'),
        "not a readable file on the site's host",
        2,
    ),
    (
        "host-file-folder-local",
        lambda k: site1(k, f'host_files = ["{k.tmp}"]'),
        "not a readable file on the site's host",
        2,
    ),
    (
        "config-missing",
        lambda k: replace(k, f'config = "{k.config}"', 'config = "/nonexistent.yml"'),
        "does not exist",
        2,
    ),
    (
        "config-folder",
        lambda k: replace(k, f'config = "{k.config}"', f'config = "{k.tmp}"'),
        "not a regular file",
        2,
    ),
    ("config-empty", lambda k: replace(k, f'config = "{k.config}"', 'config = ""'), "config", 2),
    ("config-int", lambda k: replace(k, f'config = "{k.config}"', "config = 5"), "config", 2),
    # --- the inventory: reading it
    ("inv-missing", lambda k: set_inv(k, k.tmp / "none.json"), "inventory file not found", 2),
    ("inv-folder", lambda k: set_inv(k, folder(k, "inv")), "a folder", 2),
    ("inv-fifo", lambda k: set_inv(k, fifo(k, "inv.json")), "not a regular file", 2),
    ("inv-dev-zero", lambda k: set_inv(k, Path("/dev/zero")), "not a regular file", 2),
    ("inv-huge", lambda k: set_inv(k, sparse(k, "inv.json", 65 << 20)), "for an inventory", 2),
    ("inv-not-utf8", lambda k: set_inv(k, binary(k, "inv.json")), "not UTF-8", 2),
    ("inv-not-json", lambda k: set_inv(k, text(k, "inv.json", "{")), "not JSON", 2),
    ("inv-nested-200000", lambda k: set_inv(k, deep_json(k)), "nested too deeply", 2),
    ("inv-list", lambda k: setattr(k, "inv_data", []), "inventory", 2),
    ("inv-version", lambda k: k.inv_data.update(version=2), "version 2", 2),
    ("inv-no-version", lambda k: k.inv_data.pop("version"), "version", 2),
    ("inv-no-sites", lambda k: k.inv_data.update(sites=[]), "sites", 2),
    ("inv-extra", lambda k: k.inv_data.update(colour=1), "colour", 2),
    ("inv-credentials-list", lambda k: k.inv_data.update(credentials=[]), "credentials", 2),
    ("no-coordinator", lambda k: k.site(0).update(role="participant"), "coordinate", 2),
    ("two-coordinators", lambda k: k.site(1).update(role="coordinator"), "coordinate", 2),
    ("role-unknown", lambda k: k.site(1).update(role="boss"), "role", 2),
    ("same-site-name", lambda k: k.site(1).update(name="site1"), "unique", 2),
    # --- two sites, one identity (section 1)
    (
        "same-fc-user",
        lambda k: k.site(1).update(fc_user=k.site(0)["fc_user"]),
        "sites site1 and site2 share the FeatureCloud user",
        2,
    ),
    (
        "same-fc-user-case",
        lambda k: k.site(1).update(fc_user=k.site(0)["fc_user"].upper()),
        "sites site1 and site2 share the FeatureCloud user",
        2,
    ),
    (
        "same-local-port",
        lambda k: ctl(k, 1, port=k.site(0)["controller"]["port"]),
        "sites site1 and site2 share the controller address local",
        2,
    ),
    (
        "same-local-data-dir",
        lambda k: ctl(k, 1, data_dir=k.site(0)["controller"]["data_dir"]),
        "sites site1 and site2 share the controller data dir",
        2,
    ),
    (
        "same-data-dir-slash",
        lambda k: ctl(k, 1, data_dir=k.site(0)["controller"]["data_dir"] + "/"),
        "sites site1 and site2 share the controller data dir",
        2,
    ),
    (
        "same-ssh-controller",
        lambda k: ssh_pair(k, port2=8000, data2="/srv/fc/data2"),
        "sites site1 and site2 share the controller address 10.0.0.5:22, port 8000",
        2,
    ),
    (
        "same-ssh-data-dir",
        lambda k: ssh_pair(k, port2=8001, data2="/srv/fc/data"),
        "sites site1 and site2 share the controller data dir /srv/fc/data on 10.0.0.5:22",
        2,
    ),
    # --- a site's fields
    ("site-name-newline-inv", lambda k: k.site(1).update(name="site2\n"), "name", 2),
    ("site-name-upper-inv", lambda k: k.site(1).update(name="Site2"), "name", 2),
    ("start-unknown-placeholder", lambda k: ctl(k, 0, start="run {prot}"), "{prot}", 2),
    ("stop-unknown-placeholder", lambda k: ctl(k, 0, stop="kill {pid}"), "{pid}", 2),
    ("start-brace", lambda k: ctl(k, 0, start="run {port"), "not a valid template", 2),
    ("start-positional", lambda k: ctl(k, 0, start="run {}"), "unknown placeholder", 2),
    ("start-attribute", lambda k: ctl(k, 0, start="run {port.real}"), "unknown placeholder", 2),
    ("start-index", lambda k: ctl(k, 0, start="run {name[0]}"), "unknown placeholder", 2),
    ("controller-name-newline", lambda k: ctl(k, 0, name="fc\nx"), "controller.name", 2),
    ("controller-name-space", lambda k: ctl(k, 0, name="fc x"), "controller.name", 2),
    ("controller-port-0", lambda k: ctl(k, 0, port=0), "port", 2),
    ("controller-port-big", lambda k: ctl(k, 0, port=70000), "port", 2),
    ("controller-port-str", lambda k: ctl(k, 0, port="x"), "port", 2),
    ("data-dir-relative", lambda k: ctl(k, 0, data_dir="data"), "absolute", 2),
    ("data-dir-newline", lambda k: ctl(k, 0, data_dir="/srv/a\nb"), "newline", 2),
    ("workdir-relative", lambda k: k.site(0).update(workdir="w"), "absolute", 2),
    ("workdir-nul", lambda k: k.site(0).update(workdir="/w\x00"), "NUL", 2),
    ("transport-unknown", lambda k: k.site(0).update(transport="ftp"), "transport", 2),
    ("ssh-without-block", lambda k: k.site(0).update(transport="ssh"), "ssh block", 2),
    (
        "ssh-bad-host-key",
        lambda k: ssh_pair(k).update(host_keys=["x"]),
        "host_keys",
        2,
    ),
    (
        "ssh-two-key-sources",
        lambda k: ssh_pair(k).update(private_key="k"),
        "exactly one of private_key",
        2,
    ),
    (
        "ssh-port-0",
        lambda k: ssh_pair(k).update(port=0),
        "ssh.port",
        2,
    ),
    # --- the .env
    ("env-missing", lambda k: set_env(k, k.tmp / "none.env"), "no such file", 2),
    ("env-folder", lambda k: set_env(k, folder(k, "env")), "is a folder", 2),
    ("env-fifo", lambda k: set_env(k, fifo(k, "env")), "not a regular file", 2),
    ("env-device", lambda k: set_env(k, Path("/dev/zero")), "not a regular file", 2),
    ("env-not-utf8", lambda k: set_env(k, binary(k, "env")), "not UTF-8", 2),
    ("env-unreadable", lambda k: set_env(k, Path("/proc/self/mem")), "cannot read it", 2),
    ("env-huge", lambda k: set_env(k, sparse(k, "env", 2 << 20)), "over 1048576", 2),
    ("env-no-password", lambda k: setattr(k, "env_text", "# none\n"), "no FeatureCloud pass", 2),
    # --- arguments
    ("arg-unknown", lambda k: k.extra.append("--bogus"), "unrecognized arguments", 2),
    ("arg-outdir-file", lambda k: k.extra.extend(["--outdir", str(k.config)]), "--outdir", 2),
    ("arg-outdir-proc", lambda k: k.extra.extend(["--outdir", "/proc/x"]), "--outdir", 2),
    (
        "arg-outdir-under-file",
        lambda k: k.extra.extend(["--outdir", f"{k.config}/x"]),
        "--outdir",
        2,
    ),
    ("arg-sites-word", lambda k: k.extra.extend(["--sites", "x"]), "--sites", 2),
    ("arg-resume-unknown", lambda k: k.extra.extend(["--resume", "nosuchrun"]), "nosuchrun", 2),
    ("url-ftp", lambda k: setattr(k, "website_url", "ftp://x"), "website URL", 2),
    ("url-word", lambda k: setattr(k, "website_url", "nowhere"), "website URL", 2),
    ("url-bad-port", lambda k: setattr(k, "website_url", "http://127.0.0.1:99999"), "port", 2),
    # --- on the website (the preflight)
    ("app-unknown", lambda k: top(k, 'app = "no-such-app"'), "no app 'no-such-app'", 2),
    ("app-wrong-case", lambda k: top(k, 'app = "Mean-App"'), "no app 'Mean-App'", 2),
    ("project-of-another-user", others_project, "field project_id: ", 2),
    ("workdir-proc", lambda k: k.site(0).update(workdir="/proc/x"), "field workdir", 2),
    ("workdir-under-file", lambda k: k.site(1).update(workdir=f"{k.config}/w"), "workdir", 2),
    ("data-dir-proc", lambda k: ctl(k, 1, data_dir="/proc/fc/data"), "field controller.data", 2),
    ("project-nonexistent", lambda k: top(k, "project_id = 999999"), "no project 999999", 2),
    (
        "password-wrong-first",
        lambda k: setattr(k, "env_text", k.env_text.replace("=", "=x", 1)),
        "FeatureCloud user",
        2,
    ),
    (
        "password-wrong-second",
        lambda k: setattr(k, "env_text", "=x".join(k.env_text.rsplit("=", 1))),
        "FeatureCloud user",
        2,
    ),
    (
        "website-unreachable",
        lambda k: setattr(k, "website_url", f"http://127.0.0.1:{closed_port()}"),
        "127.0.0.1",
        2,
    ),
]


@pytest.mark.parametrize(
    ("change", "fragment", "code"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    change: Case,
    fragment: str,
    code: int,
) -> None:
    monkeypatch.chdir(tmp_path)
    kit = Kit(world, tmp_path)
    change(kit)
    argv = kit.argv()
    before = world.projects()
    capsys.readouterr()
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("runner: "), err
    assert fragment in lines[0], err
    assert len(lines[0]) < 1000
    assert not kit.out.exists() or not any(kit.out.iterdir())
    assert not (tmp_path / "runs").exists()
    assert world.projects() == before


def test_there_are_at_least_a_hundred_and_fifty_kinds_with_fcapi() -> None:
    from tests.fcapi.test_bad_inputs import CASES as FCAPI_CASES

    assert len({c[0] for c in CASES}) == len(CASES)
    assert len(CASES) + len(FCAPI_CASES) >= 150


def test_a_readable_env_file_is_one_warning_line(world: World, tmp_path: Path) -> None:
    """A 644 .env: one `runner: warning:` line, not Python's two-line warning (real process)."""
    kit = Kit(world, tmp_path)
    kit.env_text = "# no passwords\n"
    argv = kit.argv()
    (tmp_path / ".env").chmod(0o644)
    done = subprocess.run(
        [sys.executable, "-m", "runner", *argv], capture_output=True, text=True, timeout=60
    )
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("runner: warning: ") and "chmod 600" in lines[0]
    assert lines[1].startswith("runner: no FeatureCloud password")
    assert "Traceback" not in done.stderr
