"""Build a federation for end-to-end runner tests: accounts, inventory, data and workflow.

Sites are either OpenSSH test hosts in network namespaces (tests/testhosts.py) running the
emulator's controller, or local directories; either way the runner drives them through its
real transports and the emulated website over real HTTP.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

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
