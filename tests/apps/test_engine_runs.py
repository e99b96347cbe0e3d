"""Engine apps in a project: the emulated website and controllers, app processes, real HTTP."""

from __future__ import annotations

import httpx

from fcapi.emulator.engine.folders import AppFolder
from runner.demo import run_demo
from runner.demo_data import CHECK_MEAN
from tests.apps import engine_apps as apps
from tests.emulator.helpers import federation, result_files, upload, wait_status


def engine(slug: str, folder) -> dict[str, AppFolder]:
    return {slug: AppFolder(slug, 66, folder)}


async def _project(site_url: str, ctls, rows: list[str], timeout: float):
    async with httpx.AsyncClient(base_url=site_url, timeout=10) as c:
        fed = await federation(c, ctls)
        for ctl, row in zip(ctls, rows, strict=True):
            config = (apps.MEAN / "config.yml").read_bytes()
            await upload(ctl.url, fed.pid, {"data.csv": row.encode(), "config.yml": config})
        status = await wait_status(c, fed.pid, fed.heads[0], {"finished", "error"}, timeout)
        project = (await c.get(f"/api/projects/{fed.pid}/", headers=fed.heads[0])).json()
    return fed, status, project


async def _log(ctl_url: str, pid: int) -> str:
    async with httpx.AsyncClient(base_url=ctl_url) as cc:
        r = await cc.get("/logs-download/", params={"projectId": pid, "run": 1, "step": 1})
        return r.text


async def test_engine_mean_app_in_a_project_gives_the_check_value(
    emulator_site, emulator_controllers, engine_venv
):
    ctls = await emulator_controllers(3, folders=engine("mean-app", apps.MEAN))
    rows = ["1,2,3,4,5", "7,9,11", "2,2,2,4,6,6,6"]
    fed, status, _ = await _project(emulator_site.url, ctls, rows, 90)
    assert status == "finished"
    for ctl in ctls:
        files = await result_files(ctl.url, fed.pid)
        assert files["output.csv"].decode() == "5.333333333333333"
        assert files["config.yml"] == (apps.MEAN / "config.yml").read_bytes()
    log = await _log(ctls[1].url, fed.pid)
    assert "app folder" in log and "[app] " in log and "POST /api/setup" in log


async def test_an_app_that_raises_is_the_projects_error_with_the_traceback_in_the_log(
    emulator_site, emulator_controllers, engine_venv, tmp_path
):
    app = apps.write_app(tmp_path / "raises", apps.RAISES)
    ctls = await emulator_controllers(2, folders=engine("mean-app", app), app_poll=0.3)
    fed, status, project = await _project(emulator_site.url, ctls, ["1", "2"], 60)
    assert status == "error"
    assert any("ZeroDivisionError" in e for e in project["errors"]), project["errors"]
    assert "Traceback (most recent call last)" in await _log(ctls[1].url, fed.pid)


async def test_a_hanging_app_is_ended_by_the_run_deadline_naming_site_and_state(
    emulator_site, emulator_controllers, engine_venv, tmp_path
):
    app = apps.write_app(tmp_path / "hangs", apps.HANGS)
    ctls = await emulator_controllers(
        2, folders=engine("mean-app", app), run_timeout=8, app_poll=0.5
    )
    _, status, project = await _project(emulator_site.url, ctls, ["1", "2"], 60)
    assert status == "error"
    why = " ".join(project["errors"])
    assert "site 'fed-site" in why and "message 'spin'" in why and "deadline (8 s)" in why


async def test_the_demo_with_the_engine_app_prints_the_check_value(tmp_path, engine_venv):
    outcome, means = await run_demo(3, tmp_path, app_dir=apps.MEAN)
    assert outcome.code == 0
    assert means == {f"site{i}": CHECK_MEAN for i in (1, 2, 3)}
    logs = "".join(p.read_text() for p in outcome.run_dir.rglob("log_step*.txt"))
    assert "app folder" in logs


def test_an_app_dir_that_is_no_app_folder_is_one_line_and_exit_2(tmp_path, capsys):
    from runner.cli import main

    assert main(["--demo", "--app-dir", str(tmp_path), "--outdir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"runner: --app-dir {tmp_path}: not an app folder (it has no main.py)"]
    assert not (tmp_path / "o").exists()
