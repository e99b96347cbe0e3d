"""`python -m runner --demo`: a whole federation on this machine, through the real code path.

The platform is fcapi's emulator on loopback, accounts are made through its API (no seeding),
and the sites are local directories with a controller process each. Everything after that is
`runner.api.execute`, exactly as for a run on VMs, so the demo is also the smoke test of
what a researcher relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr

from fcapi.credentials import scrubbed_environ
from fcapi.files import write_atomic
from fcapi.website import WebsiteClient
from fedinfra.inventory import INVENTORY_VERSION, Inventory, SiteEntry
from runner.api import Outcome, execute
from runner.demo_data import MEAN_CONFIG_YML, site_csv
from runner.errors import BadInput, RunInterrupted
from runner.plan.workflow import load_workflow
from runner.sites.emulated import controller_spec

DEFAULT_OUTDIR = Path("fedstack-runs")
#: how long the emulated website may take to start listening
EMULATOR_START_DEADLINE = 30.0
MAX_SITES = 500
#: the demo's controllers stand in for machines of their own: lower priority than the runner
CONTROLLER_NICE = 19
#: fedstack's mean app on FeatureCloud's engine (`--app-engine`)
ENGINE_MEAN_APP = Path(__file__).resolve().parents[1] / "apps" / "mean"
#: the controllers' registry of app folders in their data dir (docs/CONTRACTS.md, emulator)
APPS_FILE = "apps.json"
MEAN_APP = ("mean-app", 66)


@dataclass
class DemoFederation:
    inventory: Inventory
    passwords: dict[str, SecretStr]
    workflow_file: Path
    sites_dir: Path


@contextlib.asynccontextmanager
async def emulated_website(state_file: Path | None = None) -> AsyncIterator[str]:
    """Start `python -m fcapi.emulator site` on a free loopback port; yield its URL."""
    cmd = [sys.executable, "-m", "fcapi.emulator", "site", "--host", "127.0.0.1", "--port", "0"]
    if state_file is not None:
        cmd += ["--state", str(state_file)]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=scrubbed_environ(),
    )
    try:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), EMULATOR_START_DEADLINE)
        except TimeoutError:
            raise RuntimeError(
                f"the emulated website did not start within {EMULATOR_START_DEADLINE:.0f} s"
            ) from None
        text = line.decode().strip()
        if " listening on " not in text:
            err = b""
            if proc.stderr is not None:
                with contextlib.suppress(TimeoutError):
                    err = await asyncio.wait_for(proc.stderr.read(), 5)
            last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"the emulated website did not start: {last[0]}")
        yield text.rsplit(" ", 1)[-1]
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held together while picked, so all differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def demo_user(index: int) -> str:
    return f"site{index + 1}@demo.fedstack.example"


async def create_accounts(website_url: str, count: int) -> dict[str, SecretStr]:
    """Sign up one user per site, and its site, through the website API.

    Passwords are fresh and random and live only in this process.
    """
    passwords = {demo_user(i): SecretStr(secrets.token_urlsafe(18)) for i in range(count)}
    limit = asyncio.Semaphore(16)

    async def signup(index: int, user: str) -> None:
        async with limit:
            await WebsiteClient.signup(
                website_url,
                user,
                passwords[user],
                first_name="Demo",
                last_name=f"Site {index + 1}",
            )
            # the site, as a researcher's account has one before fedstack is used
            async with WebsiteClient(website_url, user, passwords[user]) as client:
                await client.ensure_site(f"site{index + 1}")

    await asyncio.gather(*(signup(i, u) for i, u in enumerate(passwords)))
    return passwords


def build_federation(
    website_url: str, passwords: dict[str, SecretStr], sites_dir: Path, outdir: Path
) -> DemoFederation:
    """Local sites with the demo's data, an inventory for them and a workflow file."""
    users = list(passwords)
    ports = free_ports(len(users))
    entries: list[SiteEntry] = []
    workflow = [
        'app = "mean-app"',
        'config = "config.yml"',
        'deadline = "15m"',
        f"outdir = {json.dumps(str(outdir))}",
        "",
    ]
    for index, (user, port) in enumerate(zip(users, ports, strict=True)):
        name = f"site{index + 1}"
        workdir = sites_dir / name
        (workdir / "data").mkdir(parents=True)
        data = sites_dir / "input" / f"{name}.csv"
        data.parent.mkdir(exist_ok=True)
        data.write_text(site_csv(index), encoding="utf-8")
        entries.append(
            SiteEntry(
                name=name,
                fc_user=user,
                role="coordinator" if index == 0 else "participant",
                transport="local",
                workdir=str(workdir),
                controller=controller_spec(
                    str(workdir / "data"), website_url, port, nice=CONTROLLER_NICE
                ),
            )
        )
        workflow += [
            f"[sites.{name}]",
            f'files = [{{ path = "input/{name}.csv", as = "data.csv" }}]',
            "",
        ]
    (sites_dir / "config.yml").write_text(MEAN_CONFIG_YML, encoding="utf-8")
    workflow_file = sites_dir / "workflow.toml"
    workflow_file.write_text("\n".join(workflow), encoding="utf-8")
    inventory = Inventory(version=INVENTORY_VERSION, stack="demo", sites=entries)
    write_atomic(
        sites_dir / "inventory.json", json.dumps(inventory.to_json_dict(), indent=2), mode=0o600
    )
    return DemoFederation(inventory, passwords, workflow_file, sites_dir)


def engine_app_dir(app_engine: bool, app_dir: Path | None) -> Path | None:
    """The app folder the demo's controllers run as the mean app, or None (in-process app)."""
    if app_dir is None and not app_engine:
        return None
    folder = (app_dir if app_dir is not None else ENGINE_MEAN_APP).expanduser().resolve()
    if not (folder / "main.py").is_file():
        raise BadInput(f"--app-dir {folder}: not an app folder (it has no main.py)")
    return folder


def register_app_folder(fed: DemoFederation, folder: Path) -> None:
    """Tell every demo controller to run `folder` for the mean app's slug and id."""
    slug, app_id = MEAN_APP
    entry = [{"slug": slug, "id": app_id, "path": str(folder)}]
    for site in fed.inventory.sites:
        data_dir = Path(site.controller.data_dir)
        write_atomic(data_dir / APPS_FILE, json.dumps(entry), mode=0o644)


def prepare_outdir(outdir: Path) -> Path:
    outdir = outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    return outdir


def read_means(run_dir: Path) -> dict[str, str]:
    """Each site's mean as its result file says it, by site."""
    found: dict[str, str] = {}
    for out in sorted((run_dir / "sites").glob("*/run*/step*/output.csv")):
        site = out.relative_to(run_dir / "sites").parts[0]
        lines = out.read_text(encoding="utf-8").split()
        if lines:
            found[site] = lines[-1]
    return found


async def run_demo(
    sites: int,
    outdir: Path,
    *,
    json_output: bool = False,
    keep_sites: bool = False,
    app_dir: Path | None = None,
    events: TextIO | None = None,
) -> tuple[Outcome, dict[str, str]]:
    """The demo; with `app_dir`, every site runs that engine app folder as the mean app."""
    if not 1 <= sites <= MAX_SITES:
        raise BadInput(f"--sites must be between 1 and {MAX_SITES}, got {sites}")
    outdir = await asyncio.to_thread(prepare_outdir, outdir)
    sites_dir = Path(tempfile.mkdtemp(dir=outdir, prefix=".demo-sites-"))
    try:
        async with emulated_website() as url:
            passwords = await create_accounts(url, sites)
            fed = build_federation(url, passwords, sites_dir, outdir)
            if app_dir is not None:
                register_app_folder(fed, app_dir)
            workflow = load_workflow(fed.workflow_file, fed.inventory)
            outcome = await execute(
                fed.inventory,
                workflow,
                fed.passwords,
                website_url=url,
                json_output=json_output,
                events=events,
            )
        return outcome, read_means(outcome.run_dir)
    except RunInterrupted:
        await asyncio.to_thread(stop_controllers, sites_dir)
        raise
    finally:
        if not keep_sites:
            shutil.rmtree(sites_dir, ignore_errors=True)


def stop_controllers(sites_dir: Path) -> None:
    """Stop every demo controller still running (an interrupted demo has no resume)."""
    inventory_file = sites_dir / "inventory.json"
    if not inventory_file.is_file():
        return
    inventory = Inventory.model_validate_json(inventory_file.read_text(encoding="utf-8"))
    for site in inventory.sites:
        subprocess.run(
            ["sh", "-c", site.controller.stop_command],
            timeout=30,
            check=False,
            capture_output=True,
            env=scrubbed_environ(),
        )
