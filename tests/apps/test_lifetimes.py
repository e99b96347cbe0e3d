"""No app process outlives what started it, even a controller killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap

from tests.apps import engine_apps as apps
from tests.apps.test_testbed import app_processes

KEEPER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from fcapi.emulator.engine.process import AppProcess

    async def main():
        app_dir, python, work = (Path(a) for a in sys.argv[1:4])
        (work / "in").mkdir(); (work / "out").mkdir()
        app = AppProcess(app_dir, python, work / "in", work / "out", lambda line: None)
        await app.start()
        print("up", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_app_processes_die_with_a_killed_controller(tmp_path, engine_venv):
    app = apps.write_app(tmp_path / "hangs", apps.HANGS)
    keeper = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-c", KEEPER, str(app), str(engine_venv / "bin" / "python"), str(tmp_path)),
        stdout=asyncio.subprocess.PIPE,
    )
    assert keeper.stdout is not None
    assert await asyncio.wait_for(keeper.stdout.readline(), 120) == b"up\n"
    assert app_processes(app), "the app should be running"
    os.kill(keeper.pid, signal.SIGKILL)
    await keeper.wait()
    for _ in range(100):
        if not app_processes(app):
            break
        await asyncio.sleep(0.1)
    assert app_processes(app) == []
