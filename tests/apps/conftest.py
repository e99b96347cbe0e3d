from __future__ import annotations

import pytest

from tests.apps.engine_apps import MEAN


@pytest.fixture(scope="session")
def engine_venv():
    """The engine apps' venv, built once per machine (~/.cache/fedstack/app-venvs) and reused."""
    from fcapi.emulator.engine.venvs import ensure_venv

    return ensure_venv(MEAN)
