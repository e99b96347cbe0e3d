"""An app folder fedstack does not ship, registered by `--app SLUG=ID:DIR` on the site and the
controller processes, runs in a project under its own slug and id."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.apps.engine_apps import MEAN
from tests.emulator.helpers import federation, result_files, upload, wait_status
from tests.emulator.test_processes import procs  # noqa: F401  (the fixture)


@dataclass
class Ctl:
    url: str
    data_dir: Path


async def test_a_registered_app_folder_runs_under_its_slug_and_id(tmp_path, procs, engine_venv):  # noqa: F811
    folder = tmp_path / "their-mean"
    shutil.copytree(MEAN, folder)
    site = procs("site", "--port", "0", "--app", "their-mean=4242")
    data_dir = tmp_path / "ctl"
    spec = f"their-mean=4242:{folder}"
    ctl = procs(
        "controller",
        "--site-url",
        site.url,
        "--data-dir",
        str(data_dir),
        "--port",
        "0",
        "--app",
        spec,
        "--app-poll",
        "0.5",
    )
    async with httpx.AsyncClient(base_url=site.url, timeout=10) as c:
        apps = (await c.get("/api/apps/")).json()
        assert {"id": 4242, "slug": "their-mean"}.items() <= next(
            a for a in apps if a["id"] == 4242
        ).items()
        fed = await federation(c, [Ctl(ctl.url, data_dir)], app_id=4242)
        await upload(ctl.url, fed.pid, {"data.csv": b"1,2,3,4,5\n"})
        assert await wait_status(c, fed.pid, fed.heads[0], {"finished", "error"}, 90) == "finished"
    assert (await result_files(ctl.url, fed.pid))["output.csv"] == b"3.0"


def test_a_bad_app_spec_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fcapi.emulator", "site", "--port", "0", "--app", "mean-app"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "fcapi-emulator site: --app 'mean-app': expected SLUG=ID:DIR, e.g. mean-app=66:apps/mean"
    ]
