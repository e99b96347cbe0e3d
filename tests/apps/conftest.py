from __future__ import annotations

import pytest

from tests.apps.engine_apps import MEAN


@pytest.fixture(scope="session")
def engine_venv():
    """The engine apps' venv, built once per machine (~/.cache/fedstack/app-venvs) and reused.

    Skips the test where app processes cannot get their namespaces (as tests/testhosts.py does
    for its test hosts); the refusal itself is tested in test_contract_pieces.py.
    """
    from fcapi.emulator.engine.process import AppStartError, namespace_command
    from fcapi.emulator.engine.venvs import ensure_venv

    try:
        namespace_command()
    except AppStartError as exc:
        pytest.skip(str(exc))
    return ensure_venv(MEAN)
