"""In-process apps are driven as the engine's contract says: setup returns at once, the local
work runs on the app's own thread, and the controller polls status every `app_poll` seconds
(the engine's 1 s), so an app that becomes ready on its own is seen within about a poll."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from fcapi.emulator.apps import REGISTERED, AppInfo, emulated
from fcapi.emulator.apps.base import FederatedApp, InProcess, Setup, in_process
from fcapi.emulator.engine.testbed import run_sites
from tests.emulator.helpers import federation, upload, wait_status

LATE_APP = 931


class LateApp(FederatedApp):
    """Finishes on its own two seconds after setup returned; notes when."""

    app_id = LATE_APP
    slug = "late-app"
    name = "Late"
    ready_at: float = 0.0

    def work(self, setup: Setup) -> None:
        time.sleep(2.0)
        LateApp.ready_at = time.monotonic()
        self.finish("late")

    def receive(self, sender: str, memo: str, data: bytes) -> None:
        pass


async def test_an_app_ready_on_its_own_is_seen_within_a_poll(
    emulator_site, emulator_controllers, monkeypatch
):
    monkeypatch.setitem(emulated(), LateApp.slug, LateApp)
    monkeypatch.setitem(REGISTERED, LATE_APP, AppInfo(LATE_APP, LateApp.slug, LateApp.name))
    ctls = await emulator_controllers(1, app_poll=1.0)
    async with httpx.AsyncClient(base_url=emulator_site.url, timeout=10) as c:
        fed = await federation(c, ctls, app_id=LATE_APP, prefix="late")
        await upload(ctls[0].url, fed.pid, {"data.csv": b"1,2\n"})
        assert await wait_status(c, fed.pid, fed.heads[0], {"finished", "error"}, 60) == "finished"
    seen = time.monotonic()
    assert LateApp.ready_at > 0
    assert seen - LateApp.ready_at < 5.0, f"seen {seen - LateApp.ready_at:.1f} s after it was ready"


class Gate(FederatedApp):
    app_id = 0
    slug = "gate"
    name = "gate"

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()

    def work(self, setup: Setup) -> None:
        if not self.open.wait(30):
            raise TimeoutError("the gate stayed shut")
        if setup.id == "broken":
            raise ZeroDivisionError("no")
        self.finish("through")

    def receive(self, sender: str, memo: str, data: bytes) -> None:
        pass


def body(me: str) -> dict[str, object]:
    return {"id": me, "coordinator": True, "master": True, "clients": [me], "coordinatorID": me}


async def test_setup_returns_at_once_and_status_reads_running_until_the_work_is_done(tmp_path):
    app = Gate()
    hosted = InProcess(app, tmp_path, tmp_path)
    started = time.monotonic()
    await hosted.setup(body("1"))
    assert time.monotonic() - started < 1.0
    st = await hosted.status()
    assert (st.finished, st.state, st.progress, st.memo, st.smpc) == (
        False,
        "running",
        None,
        None,
        None,
    )
    app.open.set()
    for _ in range(100):
        if (st := await hosted.status()).finished:
            break
        await asyncio.sleep(0.02)
    assert (st.finished, st.progress, st.message) == (True, 1.0, "through")
    app.stop()


async def test_an_exception_on_the_apps_thread_ends_it_as_the_engine_does(tmp_path):
    """finished, state error, the exception's class name; the traceback in the app's output."""
    lines: list[str] = []
    app = Gate()
    async with in_process(app, tmp_path, tmp_path, lines.append) as hosted:
        await hosted.setup(body("broken"))
        app.open.set()
        for _ in range(100):
            if (st := await hosted.status()).finished:
                break
            await asyncio.sleep(0.02)
    assert (st.finished, st.state, st.message) == (True, "error", "ZeroDivisionError")
    assert "Traceback" in lines[0] and "ZeroDivisionError: no" in lines[0]


class SmpcApp(FederatedApp):
    """Each site sends [k, 2k] as an SMPC piece; the coordinator writes the one package."""

    app_id = 0
    slug = "smpc"
    name = "smpc"

    def work(self, setup: Setup) -> None:
        self._setup = setup
        k = setup.clients.index(setup.id) + 1
        self.send(json.dumps([k, 2 * k]).encode(), memo="SUM", smpc=True)
        if not setup.coordinator:
            self.finish("sent")

    def receive(self, sender: str, memo: str, data: bytes) -> None:
        (self._setup.output_dir / "smpc.json").write_text(
            json.dumps({"sender": sender, "memo": memo, "total": json.loads(data)})
        )
        self.finish("summed")


@pytest.mark.parametrize("n", [1, 3])
async def test_an_in_process_app_gets_its_smpc_pieces_as_one_package(tmp_path, n):
    sites = []
    for i in range(n):
        (site := tmp_path / f"in{i}").mkdir()
        sites.append(site)

    def launch(
        i: Path, o: Path, on_line: Callable[[str], None]
    ) -> contextlib.AbstractAsyncContextManager[InProcess]:
        return in_process(SmpcApp(), i, o, on_line)

    outcomes = await run_sites(launch, sites, tmp_path / "work", seconds=30, poll=0.2)
    assert [o.state for o in outcomes] == ["finished"] * n, [o.message for o in outcomes]
    got = json.loads((outcomes[0].output_dir / "smpc.json").read_text())
    k = n * (n + 1) // 2
    assert got == {"sender": "1", "memo": "SUM", "total": [k, 2 * k]}
