"""Site-held credentials: a participant's FeatureCloud password that stays on its own host.

What a partner institution relies on: the coordinator's runner never holds its password (not in
its environment, argv, memory, files or logs), the host logs in and joins by itself, the run
still computes the right mean, and a password file set up wrongly on the host is one line
naming the site and the path before any project exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import SecretStr

from fcapi.emulator.serve import RunningServer, _serving, fault_state
from fcapi.emulator.site_context import SiteContext
from fcapi.emulator.site_server import build_site_app
from fcapi.files import write_atomic
from fcapi.website import WebsitePool
from fedinfra.inventory import INVENTORY_VERSION, Inventory, SiteEntry
from runner.api import execute
from runner.demo_data import CHECK_MEAN
from runner.errors import EXIT_SITES_FAILED, RunFailed
from runner.plan.checks.sites import check_sites
from runner.plan.credentials import MissingPasswords, passwords_for_run
from tests.runner.federation import Federation, build, local_federation, only_run, outputs
from tests.testhosts import NetnsHost

HELD = "site2"
JOIN_PATH = "/api/project-tokens/"

Scope = MutableMapping[str, Any]
Asgi = Callable[[Scope, Any, Any], Awaitable[None]]


def hold_on_host(
    fed: Federation, site: str = HELD, *, mode: int = 0o600, python: str = sys.executable
) -> Path:
    """Mark `site` host-held, with its password in a file on its host (the tests' hosts share
    this machine's disk, so the site's admin's step is a write here); the inventory changed."""
    entry = fed.inventory.site(site)
    password_file = Path(entry.workdir) / "fc-password"
    write_atomic(password_file, fed.passwords[entry.fc_user].get_secret_value() + "\n", mode)
    os.chmod(password_file, mode)
    held = SiteEntry.model_validate(
        entry.model_dump()
        | {
            "credentials": "host",
            "password_file": str(password_file),
            "fcapi_python": python,
        }
    )
    sites = [held if s.name == site else s for s in fed.inventory.sites]
    fed.inventory = Inventory(version=INVENTORY_VERSION, stack="e2e", sites=sites)
    return password_file


def runner_files(fed: Federation) -> tuple[Path, Path]:
    """inventory.json and a .env of the runner-held users only, as a coordinator has them."""
    inv = fed.work / "inventory.json"
    write_atomic(inv, json.dumps(fed.inventory.to_json_dict(reveal_secrets=True)), 0o600)
    held = {s.fc_user for s in fed.inventory.sites if s.host_held}
    lines = [f"{u}={p.get_secret_value()}" for u, p in fed.passwords.items() if u not in held]
    env = fed.work / ".env"
    write_atomic(env, "\n".join(lines) + "\n", 0o600)
    return inv, env


@contextlib.asynccontextmanager
async def website_noting_clients(host: str) -> AsyncIterator[tuple[RunningServer, list[Any]]]:
    """The emulated website, noting each request's client address, method and path."""
    ctx = SiteContext(None, fault_state(None))
    app = cast(Asgi, build_site_app(ctx))
    seen: list[tuple[str, str, str]] = []

    async def noting(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append((scope["client"][0], scope["method"], scope["path"]))
        await app(scope, receive, send)

    async with _serving(cast(Any, noting), host, 0, ctx) as running:
        try:
            yield running, seen
        finally:
            ctx.shutdown()


def memory_holds(pid: int, needle: bytes) -> bool:
    """Whether any readable mapping of process `pid` holds `needle` (read as root)."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if "r" not in perms or end - start > 1 << 30:
                continue
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            if chunk and needle in chunk:
                return True
    return False


def family(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc's children lists."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


async def run_watched(argv: list[str], needle: bytes, control: bytes) -> dict[str, Any]:
    """Run the runner, scanning its (and its children's) environment and argv all along, and
    its memory once its held site has joined; `control` (a password it holds) must be found
    there, proving that the scan sees what is there."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    seen: dict[str, Any] = {"scans": 0, "in_env_or_argv": False, "memory": None, "control": None}
    seen["log"] = ""

    async def scan() -> None:
        while proc.returncode is None:
            for pid in family(proc.pid):
                with contextlib.suppress(OSError):
                    for name in ("environ", "cmdline"):
                        if needle in Path(f"/proc/{pid}/{name}").read_bytes():
                            seen["in_env_or_argv"] = True
            seen["scans"] += 1
            await asyncio.sleep(0.1)

    async def read_log() -> None:
        assert proc.stderr is not None
        while line := (await proc.stderr.readline()).decode():
            seen["log"] += line
            if seen["memory"] is None and HELD in line and "join ok" in line:
                seen["memory"] = await asyncio.to_thread(memory_holds, proc.pid, needle)
                seen["control"] = await asyncio.to_thread(memory_holds, proc.pid, control)

    scanner = asyncio.create_task(scan())
    async with asyncio.timeout(180):
        out, _ = await asyncio.gather(proc.stdout.read(), read_log())
        seen["code"] = await proc.wait()
    scanner.cancel()
    seen["out"] = out.decode()
    return seen


@pytest.mark.netns
async def test_a_held_participant_joins_from_its_host_and_its_password_never_reaches_the_runner(
    three_hosts: list[NetnsHost], tmp_path: Path
):
    async with website_noting_clients(three_hosts[0].runner_address) as (web, requests):
        fed = await build(tmp_path, web.url, hosts=three_hosts)
        password_file = hold_on_host(fed)
        held_user = fed.inventory.site(HELD).fc_user
        secret = fed.passwords[held_user].get_secret_value().encode()
        control = fed.passwords[fed.inventory.site("site3").fc_user].get_secret_value().encode()
        inv, env = runner_files(fed)
        argv = [sys.executable, "-m", "runner", "--inventory", str(inv), "--workflow"]
        argv += [str(fed.workflow_file), "--env-file", str(env), "--website-url", web.url]
        ran = await run_watched(argv, secret, control)

    assert ran["code"] == 0, ran["log"]
    run_dir = fed.outdir / only_run(fed.outdir)
    means = {site: text.split()[-1] for site, text in outputs(run_dir, "output.csv").items()}
    assert means == dict.fromkeys(["site1", "site2", "site3"], CHECK_MEAN)

    # the join came from site2's host, site3's from the runner's side
    joins = [client for client, method, path in requests if (method, path) == ("POST", JOIN_PATH)]
    assert sorted(joins) == sorted([three_hosts[1].address, three_hosts[0].runner_address])
    assert (
        Path(three_hosts[1].workdir) / "data" / "site_info.json"
    ).stat().st_mode & 0o777 == 0o600

    # no trace of the password on the runner's side: environment, argv, memory, files, logs
    assert ran["scans"] > 5 and not ran["in_env_or_argv"]
    assert (ran["memory"], ran["control"]) == (False, True)
    assert secret not in env.read_bytes() and secret not in inv.read_bytes()
    for path in fed.outdir.rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    assert secret.decode() not in ran["log"] + ran["out"]
    assert password_file.read_bytes().strip() == secret  # the host's copy is untouched

    metrics = json.loads((run_dir / "metrics.json").read_text())
    modes = {s["name"]: s["credentials"] for s in metrics["sites"]}
    assert modes == {"site1": "runner", "site2": "host", "site3": "runner"}
    assert held_user not in metrics["requests"]["by_user"]  # the runner never logged it in
    report = (run_dir / "report.html").read_text()
    assert "held by their own hosts for site2" in report


def test_the_credential_loader_holds_no_password_of_a_host_held_user(tmp_path: Path):
    entries = [
        SiteEntry.model_validate(
            {
                "name": name,
                "fc_user": f"{name}@example.org",
                "role": "coordinator" if name == "a" else "participant",
                "transport": "local",
                "workdir": str(tmp_path / name),
                "controller": {"data_dir": str(tmp_path / name / "data"), "port": port},
            }
            | ({"credentials": "host", "password_file": "/etc/fc-b"} if name == "b" else {})
        )
        for name, port in (("a", 8001), ("b", 8002), ("c", 8003))
    ]
    inventory = Inventory(version=INVENTORY_VERSION, stack="t", sites=entries)
    environ = {"a@example.org": "pa", "b@example.org": "pb", "c@example.org": "pc"}
    empty = tmp_path / ".env"
    write_atomic(empty, "", 0o600)
    passwords = passwords_for_run(inventory, env_file=empty, environ=environ)
    assert passwords == {"a@example.org": SecretStr("pa"), "c@example.org": SecretStr("pc")}
    # nor does it ask for one
    with pytest.raises(MissingPasswords) as caught:
        passwords_for_run(inventory, env_file=empty, environ={"a@example.org": "x"})
    assert caught.value.users == ["c@example.org"]


@pytest.mark.parametrize(
    ("mode", "make", "expected"),
    [
        (0o644, True, "mode 644, readable by others; run: chmod 600"),
        (0o600, False, "no such file on this host"),
    ],
)
async def test_a_wrong_password_file_on_the_host_is_one_line_before_any_project(
    tmp_path: Path, mode: int, make: bool, expected: str
):
    async with local_federation(tmp_path, 3) as fed:
        password_file = hold_on_host(fed, mode=mode)
        if not make:
            password_file.unlink()
        passwords = passwords_for_run(fed.inventory, environ={}, env_file=runner_files(fed)[1])
        with pytest.raises(RunFailed) as caught:
            await execute(fed.inventory, fed.workflow(), passwords, website_url=fed.website_url)
        projects = await fed.projects()
    assert caught.value.exit_code == EXIT_SITES_FAILED
    line = str(caught.value)
    assert line.startswith(f"site {HELD}: login: ") and "site-check on its host" in line
    assert str(password_file) in line and expected in line and "\n" not in line
    assert projects == []


async def test_a_mixed_local_federation_completes_with_the_held_site_joining_by_itself(
    tmp_path: Path,
):
    async with local_federation(tmp_path, 3) as fed:
        hold_on_host(fed)
        passwords = passwords_for_run(fed.inventory, environ={}, env_file=runner_files(fed)[1])
        outcome = await execute(
            fed.inventory, fed.workflow(), passwords, website_url=fed.website_url
        )
    assert outcome.code == 0, outcome.summary
    means = {s: t.split()[-1] for s, t in outputs(outcome.run_dir, "output.csv").items()}
    assert means == dict.fromkeys(["site1", "site2", "site3"], CHECK_MEAN)
    metrics = json.loads((outcome.run_dir / "metrics.json").read_text())
    assert [s["credentials"] for s in metrics["sites"]] == ["runner", "host", "runner"]


async def test_a_host_without_fcapi_is_named_with_what_to_install(tmp_path: Path):
    async with local_federation(tmp_path, 3) as fed:
        hold_on_host(fed, python=str(tmp_path / "no-fcapi" / "python"))
        passwords = passwords_for_run(fed.inventory, environ={}, env_file=runner_files(fed)[1])
        with pytest.raises(RunFailed) as caught:
            await execute(fed.inventory, fed.workflow(), passwords, website_url=fed.website_url)
    line = str(caught.value)
    assert line.startswith(f"site {HELD}: login: ") and "is fcapi installed" in line


async def test_the_readiness_check_logs_a_held_user_in_on_its_host(tmp_path: Path):
    async with local_federation(tmp_path, 3) as fed:
        password_file = hold_on_host(fed)
        passwords = passwords_for_run(fed.inventory, environ={}, env_file=runner_files(fed)[1])
        pool = WebsitePool(fed.website_url, passwords)
        try:
            ready = await check_sites(fed.inventory, pool)
            os.chmod(password_file, 0o644)
            held = [fed.inventory.site(HELD)]
            refused = await check_sites(fed.inventory, pool, sites=held)
        finally:
            await pool.aclose()
    login = next(r for r in ready.results if (r.site, r.check) == (HELD, "login"))
    assert (login.status, ready.problems) == ("pass", [])
    assert "logged in on its host" in login.detail
    [problem] = refused.problems
    line = problem.line()
    assert line.startswith(f"site {HELD}: login: FeatureCloud user ") and "chmod 600" in line
    assert str(password_file) in line and problem.exit_code == EXIT_SITES_FAILED
