"""One site's part of a project run: set up the app, relay its messages, write the results.

A step's app is either an app folder registered for its slug (`engine.folders`), run as a
process on FeatureCloud's engine and spoken to over HTTP, or an in-process app of
`fcapi.emulator.apps`; one loop (`engine.driver.drive`) drives both, polling status on the
same interval (`app_poll`) and waking early when mail comes. The project being shut down or
reset ends the loop without a report.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fcapi.emulator.apps import emulated
from fcapi.emulator.apps.base import FederatedApp, Setup, in_process
from fcapi.emulator.engine import driver
from fcapi.emulator.engine.folders import AppFolder, check_folder
from fcapi.emulator.engine.venvs import ensure_venv, venv_python
from fcapi.emulator.faults import Faults, names_site
from fcapi.emulator.httputil import HTTPError
from fcapi.emulator.layout import RunLayout, uploads_dir, zip_output
from fcapi.emulator.relay_client import RelayClient
from fcapi.emulator.run_errors import AppFailed, Stopped


class HangingApp(FederatedApp):
    """Stands in for an app that never finishes (fault `app_hang`)."""

    app_id = 0
    slug = "hang"
    name = "hang"

    def work(self, setup: Setup) -> None:
        pass

    def receive(self, sender: str, memo: str, data: bytes) -> None:
        pass


class StepLog:
    def __init__(self, path: Path, emit: Callable[[str, str], None]) -> None:
        self.path = path
        self.emit = emit

    def __call__(self, level: str, message: str) -> None:
        self.write(level, message)
        self.emit(level, message)

    def write(self, level: str, message: str) -> None:
        """Into the step's log only (an app's own output: too much for the controller's)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.path.open("a") as f:
            f.write(f"{stamp} [{level}] {message}\n")


def _stage_inputs(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if not src.exists():
        return
    for path in src.iterdir():
        if path.is_file() and not path.name.startswith("."):
            target = dest / path.name
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)


def make_app(
    slug: str, site_name: str, faults: list[Faults], *, engine: bool = False
) -> FederatedApp | None:
    """The in-process app for this step (None: the engine app of its folder), or a
    failure/hang when a fault knob names this site."""
    if any(names_site(f.app_fail, site_name) for f in faults):
        raise AppFailed(f"app {slug} failed at site {site_name!r} (fault app_fail)")
    if any(names_site(f.app_hang, site_name) for f in faults):
        return HangingApp()
    if engine:
        return None
    cls = emulated().get(slug)
    if cls is None:
        raise AppFailed(f"app {slug!r} is not emulated; emulated apps: {sorted(emulated())}")
    return cls()


@dataclass
class RunSpec:
    """One site's part of a run, as the website's view and the controller's options say it."""

    relay: RelayClient
    data_dir: Path
    view: dict[str, Any]
    own_faults: Faults
    emit: Callable[[str, str], None]
    die: Callable[[], None]
    run_timeout: float
    folders: dict[str, AppFolder] = field(default_factory=dict)
    app_poll: float = driver.POLL


async def execute_run(spec: RunSpec) -> str:
    """Run every workflow step of the view's run for this site; returns the state reported."""
    view, relay, emit = spec.view, spec.relay, spec.emit
    pid, run = int(view["project"]), int(view["run"])
    members = view["members"]
    layout = RunLayout(spec.data_dir, pid, run)
    steps: list[str] = list(view["steps"])
    _write_meta(layout, len(steps))
    deadline = time.monotonic() + spec.run_timeout
    await relay.report(pid, run, "running")
    emit("info", f"project {pid} run {run}: started with {len(members)} sites")
    for step, slug in enumerate(steps, start=1):
        log = StepLog(layout.log(step), emit)
        out = _prepare_step(layout, step)
        try:
            await _run_step(spec, layout, step, slug, log, deadline)
            log("info", f"step {step}: finished")
        except Stopped:
            emit("warn", f"project {pid} run {run}: stopped")
            return "stopped"
        except Exception as exc:
            log("error", f"step {step}: {exc}")
            log("debug", traceback.format_exc(limit=3))
            zip_output(out, layout.result_zip(step))
            await _report(relay, pid, run, "error", str(exc))
            return "error"
        zip_output(out, layout.result_zip(step))
    await _report(relay, pid, run, "finished")
    emit("info", f"project {pid} run {run}: finished")
    return "finished"


async def _run_step(
    spec: RunSpec, layout: RunLayout, step: int, slug: str, log: StepLog, deadline: float
) -> None:
    view = spec.view
    me, site_name = str(view["me"]), str(view.get("siteName") or "")
    coordinator = next(str(m["id"]) for m in view["members"] if m["coordinator"])
    faults = [spec.own_faults, Faults.model_validate(view.get("faults") or {})]
    folder = spec.folders.get(slug)
    kind = f"app folder {folder.path}" if folder else "in-process app"
    log("info", f"step {step}: app {slug} ({kind}) at site {site_name!r} ({me})")
    app = make_app(slug, site_name, faults, engine=folder is not None)
    run = driver.StepRun(
        relay=spec.relay,
        pid=layout.pid,
        run=layout.run,
        step=step,
        me=me,
        coordinator=coordinator,
        clients=[str(m["id"]) for m in view["members"]],
        site_name=site_name,
        deadline=deadline,
        run_timeout=spec.run_timeout,
        log=log,
        poll=spec.app_poll,
    )
    after_start = functools.partial(_maybe_die, faults, site_name, log, spec.die)
    if app is None and folder is not None:
        await run_engine_app(folder, layout, step, run, log, after_start)
    else:
        assert app is not None
        await run_in_process(app, layout, step, run, log, after_start)


def _maybe_die(faults: list[Faults], site_name: str, log: StepLog, die: Callable[[], None]) -> None:
    if any(names_site(f.die_mid_run, site_name) for f in faults):
        log("fatal", "controller exits mid-run (fault die_mid_run)")
        die()
        raise Stopped("controller died")


async def run_engine_app(
    folder: AppFolder,
    layout: RunLayout,
    step: int,
    run: driver.StepRun,
    log: StepLog,
    after_start: Callable[[], None],
) -> None:
    """The step's app as a process from its folder: venv, start, drive, and always stop."""
    check_folder(folder.path)
    venv = await asyncio.to_thread(ensure_venv, folder.path, log=layout.log(step))
    out = layout.input(step), layout.output(step)
    on_line = functools.partial(log.write, "app")
    async with driver.engine_app(folder.path, venv_python(venv), *out, on_line) as app:
        log("info", f"step {step}: app process {app.process.pid} serves on {app.process.socket}")
        after_start()
        await driver.drive(app, run)


async def run_in_process(
    app: FederatedApp,
    layout: RunLayout,
    step: int,
    run: driver.StepRun,
    log: StepLog,
    after_start: Callable[[], None],
) -> None:
    """The step's in-process app, driven by the same loop; its thread ends with the step."""
    out = layout.input(step), layout.output(step)
    async with in_process(app, *out, functools.partial(log.write, "app")) as hosted:
        after_start()
        await driver.drive(hosted, run)


def _write_meta(layout: RunLayout, steps: int) -> None:
    """`run.json`, which `GET /project-runs/` lists the run by."""
    layout.dir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    layout.meta.write_text(json.dumps({"runNr": layout.run, "startedOn": started, "steps": steps}))


def _prepare_step(layout: RunLayout, step: int) -> Path:
    """Stage the step's input (the uploads, or the previous step's output); its output dir."""
    out = layout.output(step)
    out.mkdir(parents=True, exist_ok=True)
    first = uploads_dir(layout.data_dir, layout.pid)
    _stage_inputs(first if step == 1 else layout.output(step - 1), layout.input(step))
    return out


async def _report(relay: RelayClient, pid: int, run: int, state: str, detail: str = "") -> None:
    try:
        await relay.report(pid, run, state, detail)
    except HTTPError as exc:
        if exc.status != 409:  # 409: the project was reset or stopped meanwhile
            raise
