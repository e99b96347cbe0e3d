"""Build a federation for end-to-end runner tests: accounts, inventory, data and workflow.

Sites are either OpenSSH test hosts in network namespaces (tests/testhosts.py) running the
emulator's controller, or local directories; either way the runner drives them through its
real transports and the emulated website over real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import SecretStr

from fcapi.emulator.serve import running_site
from fcapi.files import write_atomic
from fcapi.website import WebsiteClient
from fedinfra.inventory import INVENTORY_VERSION, Inventory, SiteEntry
from runner.demo import create_accounts, free_ports
from runner.demo_data import MEAN_CONFIG_YML, site_csv
from runner.plan.workflow import Workflow, load_workflow
from runner.sites.emulated import controller_spec
from tests.testhosts import NetnsHost

REGRESSION_CONFIG_YML = (
    "linear_regression:\n  input_name: data.csv\n  target: y\n  output_name: coefficients.csv\n"
)


@dataclass
class Federation:
    inventory: Inventory
    passwords: dict[str, SecretStr]
    workflow_file: Path
    work: Path
    website_url: str
    site_data: dict[str, str] = field(default_factory=dict)

    @property
    def outdir(self) -> Path:
        return self.work / "out"

    def workflow(self) -> Workflow:
        return load_workflow(self.workflow_file, self.inventory)

    def write_inputs(self) -> tuple[Path, Path]:
        """inventory.json and .env for a runner started as a process (both 0600)."""
        inv = self.work / "inventory.json"
        write_atomic(inv, json.dumps(self.inventory.to_json_dict(reveal_secrets=True)), 0o600)
        env = self.work / ".env"
        lines = [f"{u}={p.get_secret_value()}" for u, p in self.passwords.items()]
        write_atomic(env, "\n".join(lines) + "\n", 0o600)
        return inv, env

    def runner_argv(self, *extra: str) -> list[str]:
        inv, env = self.write_inputs()
        return [
            sys.executable,
            "-m",
            "runner",
            "--inventory",
            str(inv),
            "--workflow",
            str(self.workflow_file),
            "--env-file",
            str(env),
            "--website-url",
            self.website_url,
            *extra,
        ]

    async def projects(self) -> list[str]:
        """The names of the coordinator's projects on the website."""
        user = self.inventory.coordinator.fc_user
        async with WebsiteClient(self.website_url, user, self.passwords[user]) as web:
            return [p.name for p in await web.list_projects()]


def regression_csv(index: int, rows: int = 12) -> str:
    """Deterministic rows of y = 1.5 + 2 x1 - 0.5 x2 + noise, different at every site."""
    import random

    rng = random.Random(f"regression-{index}")
    lines = ["x1,x2,y"]
    for _ in range(rows):
        x1, x2 = rng.uniform(-5, 5), rng.uniform(0, 10)
        y = 1.5 + 2 * x1 - 0.5 * x2 + rng.gauss(0, 0.3)
        lines.append(f"{x1!r},{x2!r},{y!r}")
    return "\n".join(lines) + "\n"


async def build(
    work: Path,
    website_url: str,
    *,
    hosts: list[NetnsHost] | None = None,
    local_sites: int = 0,
    app: str = "mean-app",
    host_data: tuple[int, ...] = (),
    deadline: str = "3m",
    host_keys: dict[int, list[str]] | None = None,
) -> Federation:
    """Accounts through the API, then one site per host (or local site), data and workflow.

    `host_data` lists site indexes whose data lives on their host (`host_files`) instead of
    on the runner's machine; `host_keys` overrides the pinned keys of some sites.
    """
    count = len(hosts) if hosts is not None else local_sites
    work.mkdir(parents=True, exist_ok=True)
    passwords = await create_accounts(website_url, count)
    users = list(passwords)
    data_of = regression_csv if app == "linear-regression" else site_csv
    config = REGRESSION_CONFIG_YML if app == "linear-regression" else MEAN_CONFIG_YML
    (work / "config.yml").write_text(config)
    lines = [
        f'app = "{app}"',
        'config = "config.yml"',
        f'deadline = "{deadline}"',
        'outdir = "out"',
        "",
    ]
    entries: list[SiteEntry] = []
    site_data: dict[str, str] = {}
    ports = free_ports(count)
    for i in range(count):
        name = f"site{i + 1}"
        role = "coordinator" if i == 0 else "participant"
        data = data_of(i)
        site_data[name] = data
        if hosts is not None:
            host = hosts[i]
            spec = controller_spec(f"{host.workdir}/data", website_url, 8000)
            entry = host.site_entry(
                name,
                controller=spec,
                role=role,
                fc_user=users[i],
                host_keys=(host_keys or {}).get(i),
            )
        else:
            workdir = work / "sites" / name
            workdir.mkdir(parents=True)
            entry = SiteEntry(
                name=name,
                fc_user=users[i],
                role=role,
                transport="local",
                workdir=str(workdir),
                controller=controller_spec(str(workdir / "data"), website_url, ports[i]),
            )
        entries.append(entry)
        if i in host_data:
            on_host = Path(entry.workdir) / "cohort.csv"
            on_host.write_text(data)
            os.chmod(on_host, 0o600)
            lines += [
                f"[sites.{name}]",
                f'host_files = [{{ path = "{on_host}", as = "data.csv" }}]',
            ]
        else:
            local = work / "input" / f"{name}.csv"
            local.parent.mkdir(exist_ok=True)
            local.write_text(data)
            lines += [
                f"[sites.{name}]",
                f'files = [{{ path = "input/{name}.csv", as = "data.csv" }}]',
            ]
        lines.append("")
    workflow_file = work / "workflow.toml"
    workflow_file.write_text("\n".join(lines))
    inventory = Inventory(version=INVENTORY_VERSION, stack="e2e", sites=entries)
    return Federation(inventory, passwords, workflow_file, work, website_url, site_data)


def outputs(run_dir: Path, name: str) -> dict[str, str]:
    """Each site's result file `name` (unpacked from its zip), by site."""
    found: dict[str, str] = {}
    for path in sorted((run_dir / "sites").glob(f"*/run*/step*/{name}")):
        found[path.relative_to(run_dir / "sites").parts[0]] = path.read_text()
    return found


def secrets_of(fed: Federation) -> list[str]:
    """Every secret a run may hold: passwords and SSH private keys."""
    found = [p.get_secret_value() for p in fed.passwords.values()]
    for site in fed.inventory.sites:
        if site.ssh is not None and site.ssh.private_key is not None:
            key = site.ssh.private_key.get_secret_value()
            found += [line for line in key.splitlines() if len(line) > 40]
    return found


#: how long one runner process may take in these tests before it is called hung
RUN_DEADLINE = 120.0


@contextlib.asynccontextmanager
async def local_federation(work: Path, sites: int = 3, **options: Any) -> AsyncIterator[Federation]:
    """The emulated website in this process and `sites` local sites, cleaned up afterwards.

    `options` go to `build`. The controllers are detached processes (as on real hosts they
    outlive the runner), so whatever a killed runner left running is stopped, then killed.
    """
    async with running_site() as web:
        fed = await build(work, web.url, local_sites=sites, **options)
        try:
            yield fed
        finally:
            for site in fed.inventory.sites:
                subprocess.run(["sh", "-c", site.controller.stop_command], timeout=30, check=False)
            # a start the killed runner had in flight may have come up after the stop
            kill_processes_under(fed.work)


def kill_processes_under(folder: Path) -> None:
    """SIGKILL every process whose command line names `folder`."""
    mark = str(folder).encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if mark in cmdline and int(pid) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


class Ran(NamedTuple):
    """A runner process's end: its exit code (-9 when killed), stderr and stdout."""

    code: int
    log: str
    out: str


async def run_until(
    argv: list[str], kill_after: str | Collection[str] | None = None, *, delay: float = 0.0
) -> Ran:
    """Run the runner; SIGKILL it `delay` s after a stderr line ended with each of `kill_after`.

    A runner that ends by itself first is not killed (its code says so).
    """
    wanted = {kill_after} if isinstance(kill_after, str) else set(kill_after or ())
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.stderr is not None and proc.stdout is not None
    seen: list[str] = []
    killer: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(RUN_DEADLINE):
            while line := (await proc.stderr.readline()).decode():
                seen.append(line)
                wanted -= {m for m in wanted if line.rstrip().endswith(m)}
                if kill_after is not None and not wanted and killer is None:
                    killer = asyncio.create_task(_kill_later(proc, delay))
                    if delay <= 0:
                        await killer  # at this very line, as a crash there would
            out = (await proc.stdout.read()).decode()
            code = await proc.wait()
    finally:
        if killer is not None:
            killer.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return Ran(code, "".join(seen), out)


async def _kill_later(proc: asyncio.subprocess.Process, delay: float) -> None:
    if delay > 0:
        await asyncio.sleep(delay)
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)


def only_run(outdir: Path) -> str:
    """The id of the one run under `outdir`."""
    runs = [p.name for p in outdir.iterdir() if (p / "state.json").is_file()]
    assert len(runs) == 1, runs
    return runs[0]


def assert_completed(run_dir: Path, sites: Collection[str]) -> None:
    """The run's outputs tell one true story: completed, every site's mean, every file listed."""
    from fcapi.files import is_temp_name, sha256_file
    from runner.demo_data import CHECK_MEAN

    means = {s: t.split()[-1] for s, t in outputs(run_dir, "output.csv").items()}
    assert means == dict.fromkeys(sites, CHECK_MEAN)
    state = json.loads((run_dir / "state.json").read_text())
    assert state["phase"] == "done"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["status"], metrics["error"]) == ("completed", None)
    assert {s["name"]: s["status"] for s in metrics["sites"]} == dict.fromkeys(sites, "ok")
    report = (run_dir / "report.html").read_text()
    assert f"<title>fedstack run {state['run_id']}: completed</title>" in report
    for site in metrics["sites"]:
        assert site["results"], site
        for path in [*site["results"], *site["logs"]]:
            assert f"<code>{path}</code>" in report
    manifest = json.loads((run_dir / "manifest.json").read_text())
    on_disk = {
        p.relative_to(run_dir).as_posix(): p
        for p in run_dir.rglob("*")
        if p.is_file() and not any(is_temp_name(part) for part in p.relative_to(run_dir).parts)
    }
    del on_disk["manifest.json"], on_disk["state.json"]
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
        rel: sha256_file(p) for rel, p in on_disk.items()
    }
