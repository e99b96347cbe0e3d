# ---- fcapi.emulator fixtures (owner: emulator; keep this section small) -------------------
# `emulator_site`: an in-process emulated website (`.url`, `.context`).
# `emulator_controllers`: `await emulator_controllers(n, **options)` starts n controllers on
# that site, each with its own data dir (`.url`, `.data_dir`); all stop at teardown.
import contextlib
from typing import Any

import pytest


@pytest.fixture
async def emulator_site():
    from fcapi.emulator.serve import running_site

    async with running_site() as site:
        yield site


@pytest.fixture
async def emulator_controllers(emulator_site, tmp_path):
    from fcapi.emulator.serve import running_controller

    async with contextlib.AsyncExitStack() as stack:
        started: list[Any] = []

        async def start(n, **options):
            new = []
            for _ in range(n):
                data_dir = tmp_path / f"controller{len(started)}"
                ctl = await stack.enter_async_context(
                    running_controller(emulator_site.url, data_dir, **options)
                )
                started.append(ctl)
                new.append(ctl)
            return new

        yield start


# ---- end of fcapi.emulator fixtures --------------------------------------------------------
