"""One site's part of a project run: set up the app, relay its messages, write the results.

This is the controller's loop of the app container contract: after `setup`, poll `status`;
when `available`, take `data` and send it through the website; otherwise wait (long poll,
with the run's deadline) for messages and deliver them. The project being shut down or
reset ends the loop without a report.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fcapi.emulator.apps import emulated
from fcapi.emulator.apps.base import AppStatus, FederatedApp, Setup
from fcapi.emulator.faults import Faults, names_site
from fcapi.emulator.httputil import HTTPError
from fcapi.emulator.layout import RunLayout, uploads_dir, zip_output
from fcapi.emulator.relay_client import RelayClient

POLL = 20.0


class Stopped(Exception):
    """The project left this run (shutdown, reset): nothing to report."""


class AppFailed(Exception):
    pass


class HangingApp(FederatedApp):
    """Stands in for an app that never finishes (fault `app_hang`)."""

    app_id = 0
    slug = "hang"
    name = "hang"

    def setup(self, setup: Setup) -> None:
        pass

    def receive(self, sender: str, memo: str, data: bytes) -> None:
        pass


class StepLog:
    def __init__(self, path: Path, emit: Callable[[str, str], None]) -> None:
        self.path = path
        self.emit = emit

    def __call__(self, level: str, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with self.path.open("a") as f:
            f.write(f"{stamp} [{level}] {message}\n")
        self.emit(level, message)


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


def make_app(slug: str, site_name: str, faults: list[Faults]) -> FederatedApp:
    """The app for this step, or a failure/hang when a fault knob names this site."""
    if any(names_site(f.app_fail, site_name) for f in faults):
        raise AppFailed(f"app {slug} failed at site {site_name!r} (fault app_fail)")
    if any(names_site(f.app_hang, site_name) for f in faults):
        return HangingApp()
    cls = emulated().get(slug)
    if cls is None:
        raise AppFailed(f"app {slug!r} is not emulated; emulated apps: {sorted(emulated())}")
    return cls()


async def execute_run(
    *,
    relay: RelayClient,
    data_dir: Path,
    view: dict[str, Any],
    own_faults: Faults,
    emit: Callable[[str, str], None],
    die: Callable[[], None],
    run_timeout: float,
) -> str:
    """Run every workflow step of `view['run']` for this site; returns the state reported."""
    pid, run = int(view["project"]), int(view["run"])
    me, site_name = str(view["me"]), str(view.get("siteName") or "")
    members = view["members"]
    clients = [str(m["id"]) for m in members]
    coordinator = next(str(m["id"]) for m in members if m["coordinator"])
    layout = RunLayout(data_dir, pid, run)
    steps: list[str] = list(view["steps"])
    _write_meta(layout, len(steps))
    deadline = time.monotonic() + run_timeout
    faults = [own_faults, Faults.model_validate(view.get("faults") or {})]
    await relay.report(pid, run, "running")
    emit("info", f"project {pid} run {run}: started with {len(clients)} sites")
    for step, slug in enumerate(steps, start=1):
        log = StepLog(layout.log(step), emit)
        out = _prepare_step(layout, step)
        try:
            log("info", f"step {step}: app {slug} at site {site_name!r} ({me})")
            app = make_app(slug, site_name, faults)
            setup = Setup(
                id=me,
                coordinator=me == coordinator,
                clients=clients,
                coordinatorID=coordinator,
                input_dir=layout.input(step),
                output_dir=out,
            )
            await asyncio.to_thread(app.setup, setup)
            if any(names_site(f.die_mid_run, site_name) for f in faults):
                log("fatal", "controller exits mid-run (fault die_mid_run)")
                die()
                raise Stopped("controller died")
            await _drive(app, relay, pid, run, step, deadline, log)
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


async def _drive(
    app: FederatedApp,
    relay: RelayClient,
    pid: int,
    run: int,
    step: int,
    deadline: float,
    log: Callable[[str, str], None],
) -> None:
    while True:
        st: AppStatus = app.status()
        while st.available:
            payload = app.data()
            await relay.send(pid, run, step, payload, st.destination, st.memo)
            log("debug", f"sent {len(payload)} bytes to {st.destination or 'default route'}")
            st = app.status()
        if st.state == "error":
            raise AppFailed(st.message or "the app reported an error")
        if st.finished:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the app did not finish step {step} before the run deadline")
        status, current, msgs = await relay.receive(pid, run, step, wait=min(POLL, remaining))
        if status != "running" or current != run:
            raise Stopped(status)
        for sender, memo, data in msgs:
            log("debug", f"received {len(data)} bytes from {sender}")
            await asyncio.to_thread(app.receive, sender, memo, data)
