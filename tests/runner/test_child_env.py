"""The processes a run starts never see a FeatureCloud password or a token.

Passwords given in the runner's environment used to reach the controller start and stop
shells of local sites (and the controllers they start), whose /proc/PID/environ lives on.
Here the start and stop commands dump their own environment to a file, and a real run
(two local sites, an emulated website, the runner as a process) must leave no secret in them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fcapi.files import write_atomic
from tests.emulator_process import emulator_process
from tests.runner.federation import build


def test_controller_shells_get_no_password_or_token(tmp_path: Path) -> None:
    with emulator_process("site") as url:
        fed = asyncio.run(build(tmp_path / "fed", url, local_sites=2))
        dumps = tmp_path / "dumps"
        dumps.mkdir()
        data = fed.inventory.to_json_dict(reveal_secrets=True)
        sites: list[dict[str, Any]] = data["sites"]  # type: ignore[assignment]
        for site in sites:
            ctl = site["controller"]
            name = site["name"]
            ctl["start"] = f"env > {dumps}/start-{name}.env; exec {ctl['start']}"
            ctl["stop"] = f"env > {dumps}/stop-{name}.env; {ctl['stop']}"
        inventory = tmp_path / "inventory.json"
        write_atomic(inventory, json.dumps(data), 0o600)
        env = {k: v for k, v in os.environ.items() if "@" not in k}
        env |= {user: p.get_secret_value() for user, p in fed.passwords.items()}
        first = next(iter(fed.passwords))
        env |= {"FC_USER": first, "FC_PASSWORD": fed.passwords[first].get_secret_value()}
        env["FEDSTACK_TEST_TOKEN"] = "token-value-that-must-not-leak"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "runner",
                "--inventory",
                str(inventory),
                "--workflow",
                str(fed.workflow_file),
                "--website-url",
                url,
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    files = sorted(dumps.iterdir())
    assert [f.name for f in files] == [
        "start-site1.env",
        "start-site2.env",
        "stop-site1.env",
        "stop-site2.env",
    ]
    secrets = [p.get_secret_value() for p in fed.passwords.values()]
    secrets.append("token-value-that-must-not-leak")
    for dump in files:
        text = dump.read_text()
        assert "PATH=" in text  # the environment is there, only scrubbed
        for secret in secrets:
            assert secret not in text, f"a secret in the environment of {dump.name}"
        assert "FC_PASSWORD" not in text and "FEDSTACK_TEST_TOKEN" not in text


def test_the_demos_website_process_gets_no_password(monkeypatch: Any) -> None:
    """The demo starts the emulated website as a child: it must not inherit the user's secrets."""
    from runner.demo import emulated_website

    secret = "demo-child-secret-7f3a"
    monkeypatch.setenv("alice@fedstack.example", secret)
    monkeypatch.setenv("FC_PASSWORD", secret)

    async def environ_of_child() -> bytes:
        async with emulated_website() as url:
            children = subprocess.run(
                ["pgrep", "-P", str(os.getpid())], capture_output=True, text=True, check=False
            ).stdout.split()
            sites = [
                pid
                for pid in children
                if b"fcapi.emulator\0site" in Path(f"/proc/{pid}/cmdline").read_bytes()
            ]
            assert len(sites) == 1, f"the demo's website {url}: children {children}"
            return Path(f"/proc/{sites[0]}/environ").read_bytes()

    assert secret.encode() not in asyncio.run(environ_of_child())
