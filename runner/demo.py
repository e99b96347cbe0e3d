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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr

from fcapi.credentials import scrubbed_environ
from fcapi.files import write_atomic
from fcapi.website import WebsiteClient
from fedinfra.inventory import INVENTORY_VERSION, Inventory, SiteEntry
from runner.api import Outcome
from runner.demo_data import MEAN_CONFIG_YML, site_csv
from runner.engine.repeat import execute_series
from runner.errors import BadInput, RunInterrupted
from runner.outputs.writers.mlflow_tracking import Tracking
from runner.plan.workflow import WorkflowSpec, load_workflow, read_spec
from runner.sites.emulated import controller_spec

DEFAULT_OUTDIR = Path("fedstack-runs")
#: how long the emulated website may take to start listening
EMULATOR_START_DEADLINE = 30.0
MAX_SITES = 500
#: the demo's controllers stand in for machines of their own: lower priority than the runner
CONTROLLER_NICE = 19
#: fedstack's apps on FeatureCloud's engine, one folder each
APPS_DIR = Path(__file__).resolve().parents[1] / "apps"
#: fedstack's mean app on FeatureCloud's engine (`--app-engine`)
ENGINE_MEAN_APP = APPS_DIR / "mean"
#: the controllers' registry of app folders in their data dir (docs/CONTRACTS.md, emulator)
APPS_FILE = "apps.json"
#: the apps a workflow file run by the demo may name: slug -> (id, folder under apps/)
SHIPPED_APPS: dict[str, tuple[int, str]] = {
    "mean-app": (66, "mean"),
    "linear-regression": (901, "linear_regression"),
    "standardize": (902, "standardize"),
}


@dataclass(frozen=True)
class DemoApp:
    """An app folder the demo's controllers run for a slug, which its website lists by id."""

    slug: str
    app_id: int
    path: Path


@dataclass
class DemoFederation:
    inventory: Inventory
    passwords: dict[str, SecretStr]
    workflow_file: Path
    sites_dir: Path


@contextlib.asynccontextmanager
async def emulated_website(
    state_file: Path | None = None, apps: Sequence[DemoApp] = (), port: int = 0
) -> AsyncIterator[str]:
    """Start `python -m fcapi.emulator site` on loopback (`port` 0: a free one), listing `apps`
    too; yield its URL.

    A sweep's federation outlives its process, so it restarts its website on the same port.
    """
    cmd = [sys.executable, "-m", "fcapi.emulator", "site", "--host", "127.0.0.1"]
    cmd += ["--port", str(port)]
    if state_file is not None:
        cmd += ["--state", str(state_file)]
    for app in apps:
        cmd += ["--app", f"{app.slug}={app.app_id}"]
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


def demo_inventory(
    website_url: str, passwords: dict[str, SecretStr], names: Sequence[str], sites_dir: Path
) -> Inventory:
    """Local sites of these names (the first the coordinator), one demo user each, written
    to `inventory.json` (so that an interrupted demo's controllers can be stopped)."""
    ports = free_ports(len(names))
    entries: list[SiteEntry] = []
    for index, (name, user, port) in enumerate(zip(names, passwords, ports, strict=True)):
        workdir = sites_dir / name
        (workdir / "data").mkdir(parents=True)
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
    inventory = Inventory(version=INVENTORY_VERSION, stack="demo", sites=entries)
    write_atomic(
        sites_dir / "inventory.json", json.dumps(inventory.to_json_dict(), indent=2), mode=0o600
    )
    return inventory


def build_federation(
    website_url: str, passwords: dict[str, SecretStr], sites_dir: Path, outdir: Path
) -> DemoFederation:
    """Local sites with the demo's data, an inventory for them and a workflow file."""
    names = [f"site{index + 1}" for index in range(len(passwords))]
    inventory = demo_inventory(website_url, passwords, names, sites_dir)
    workflow = [
        'app = "mean-app"',
        'config = "config.yml"',
        'deadline = "15m"',
        f"outdir = {json.dumps(str(outdir))}",
        "",
    ]
    for index, name in enumerate(names):
        data = sites_dir / "input" / f"{name}.csv"
        data.parent.mkdir(exist_ok=True)
        data.write_text(site_csv(index), encoding="utf-8")
        workflow += [
            f"[sites.{name}]",
            f'files = [{{ path = "input/{name}.csv", as = "data.csv" }}]',
            "",
        ]
    (sites_dir / "config.yml").write_text(MEAN_CONFIG_YML, encoding="utf-8")
    workflow_file = sites_dir / "workflow.toml"
    workflow_file.write_text("\n".join(workflow), encoding="utf-8")
    return DemoFederation(inventory, passwords, workflow_file, sites_dir)


def engine_app_dir(app_engine: bool, app_dir: Path | None) -> Path | None:
    """The app folder the demo's controllers run as the mean app, or None (in-process app)."""
    if app_dir is None and not app_engine:
        return None
    folder = (app_dir if app_dir is not None else ENGINE_MEAN_APP).expanduser().resolve()
    if not (folder / "main.py").is_file():
        raise BadInput(f"--app-dir {folder}: not an app folder (it has no main.py)")
    return folder


def shipped_apps(spec: WorkflowSpec, source: Path) -> list[DemoApp]:
    """The app folders of the apps a workflow file names, each run on FeatureCloud's engine;
    a slug fedstack ships no folder for, or a project id, is one line naming the field."""
    if spec.project_id is not None:
        raise BadInput(f"{source}: field project_id: the demo makes its own project; use apps")
    found: dict[str, DemoApp] = {}
    for step, slug in enumerate(spec.slugs):
        if slug not in SHIPPED_APPS:
            field = f"apps[{step}]" if spec.apps is not None else "app"
            raise BadInput(
                f"{source}: field {field}: the demo has no app folder for {slug!r} "
                f"(it runs {', '.join(SHIPPED_APPS)})"
            )
        app_id, folder = SHIPPED_APPS[slug]
        found[slug] = DemoApp(slug, app_id, APPS_DIR / folder)
    return list(found.values())


def register_app_folders(inventory: Inventory, apps: Sequence[DemoApp]) -> None:
    """Tell every demo controller to run each app's folder for its slug and id."""
    entries = [{"slug": a.slug, "id": a.app_id, "path": str(a.path)} for a in apps]
    for site in inventory.sites:
        data_dir = Path(site.controller.data_dir)
        write_atomic(data_dir / APPS_FILE, json.dumps(entries), mode=0o644)


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


def read_last_steps(run_dir: Path) -> dict[str, str]:
    """Each site's result of the last step of its last run, as the step and its files' names,
    by site: the same everywhere when every site got through the whole workflow (the files'
    contents may differ: an app may write more at the coordinator)."""
    found: dict[str, str] = {}
    for site in sorted(p for p in (run_dir / "sites").glob("*") if p.is_dir()):
        steps = [p for p in site.glob("run*/step*") if p.is_dir() and _step_key(p) is not None]
        if not steps:
            continue
        last = max(steps, key=lambda p: _step_key(p) or (0, 0))
        files = sorted(p.relative_to(last).as_posix() for p in last.rglob("*") if p.is_file())
        found[site.name] = f"step {last.name.removeprefix('step')}: {', '.join(files) or '-'}"
    return found


def _step_key(step_dir: Path) -> tuple[int, int] | None:
    """(run, step) of a `run<n>/step<s>` folder, None for anything else."""
    run, step = step_dir.parent.name.removeprefix("run"), step_dir.name.removeprefix("step")
    return (int(run), int(step)) if run.isdigit() and step.isdigit() else None


@dataclass(frozen=True)
class DemoPlan:
    """What a demo runs: its sites (the first the coordinator) and the app folders its
    controllers run; `workflow_file` None is the mean demo's own workflow."""

    names: list[str]
    apps: list[DemoApp]
    workflow_file: Path | None = None


def plan_demo(sites: int, app_dir: Path | None, workflow_file: Path | None) -> DemoPlan:
    """The mean demo on `sites` sites, or the workflow file's apps on the sites it names."""
    if workflow_file is not None and app_dir is not None:
        raise BadInput(
            "--app-engine and --app-dir choose the mean demo's app; --workflow names its own"
        )
    if workflow_file is not None:
        spec = read_spec(workflow_file)
        names = list(spec.sites)
        apps = shipped_apps(spec, workflow_file)
    else:
        names = [f"site{index + 1}" for index in range(sites)]
        apps = (
            [] if app_dir is None else [DemoApp("mean-app", SHIPPED_APPS["mean-app"][0], app_dir)]
        )
    if not 1 <= len(names) <= MAX_SITES:
        raise BadInput(f"--sites must be between 1 and {MAX_SITES}, got {len(names)}")
    return DemoPlan(names, apps, workflow_file)


def _federation(
    plan: DemoPlan, url: str, passwords: dict[str, SecretStr], sites_dir: Path, outdir: Path
) -> DemoFederation:
    if plan.workflow_file is None:
        fed = build_federation(url, passwords, sites_dir, outdir)
    else:
        inventory = demo_inventory(url, passwords, plan.names, sites_dir)
        fed = DemoFederation(inventory, passwords, plan.workflow_file.resolve(), sites_dir)
    if plan.apps:
        register_app_folders(fed.inventory, plan.apps)
    return fed


async def run_demo(
    sites: int,
    outdir: Path,
    *,
    json_output: bool = False,
    keep_sites: bool = False,
    app_dir: Path | None = None,
    workflow_file: Path | None = None,
    repeat: int = 1,
    tracking: Tracking | None = None,
    events: TextIO | None = None,
) -> tuple[Outcome, dict[str, str]]:
    """The demo and each site's answer; with `app_dir`, every site runs that engine app folder
    as the mean app; with `workflow_file`, the file's workflow runs on the sites it names,
    each of its apps from its folder in apps/ on FeatureCloud's engine, and each site's answer
    is its last step's result (`read_last_steps`); `repeat` runs it that many times on one
    project (the answers: the last run's)."""
    plan = plan_demo(sites, app_dir, workflow_file)
    outdir = await asyncio.to_thread(prepare_outdir, outdir)
    sites_dir = Path(tempfile.mkdtemp(dir=outdir, prefix=".demo-sites-"))
    try:
        async with emulated_website(apps=plan.apps) as url:
            passwords = await create_accounts(url, len(plan.names))
            fed = _federation(plan, url, passwords, sites_dir, outdir)
            workflow = load_workflow(fed.workflow_file, fed.inventory)
            if plan.workflow_file is not None:  # the demo's runs go where the demo's go
                workflow = workflow.model_copy(update={"outdir": outdir})
            outcome = await execute_series(
                repeat,
                fed.inventory,
                workflow,
                fed.passwords,
                website_url=url,
                json_output=json_output,
                tracking=tracking,
                events=events,
            )
        read = read_means if plan.workflow_file is None else read_last_steps
        return outcome, read(outcome.run_dir)
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
