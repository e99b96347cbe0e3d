"""Fixtures of the fcapi client tests: a fake clock, and the emulator over real HTTP.

The emulator-backed fixtures skip (with the reason) when `fcapi.emulator.serve` cannot be
imported, so the pure tests run whatever state the emulator is in.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from pydantic import SecretStr

PASSWORD = "correct-horse-battery-staple-1"


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _serve() -> Any:
    try:
        return importlib.import_module("fcapi.emulator.serve")
    except ImportError as exc:
        pytest.skip(f"the emulator is not there yet: {exc}")


@pytest.fixture
def site(request: pytest.FixtureRequest) -> Any:
    """The emulated website: tests/conftest.py's `emulator_site`, under the name used here."""
    _serve()
    return request.getfixturevalue("emulator_site")


@pytest.fixture
async def controller(site: Any, emulator_controllers: Any) -> Any:
    """One emulated controller of that website, with its own empty data dir (`.data_dir`)."""
    (ctl,) = await emulator_controllers(1)
    return ctl


_counter = iter(range(1, 10_000))


def new_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_counter)}@example.org"


@pytest.fixture
def password() -> SecretStr:
    return SecretStr(PASSWORD)


async def admin(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The emulator's admin endpoints (faults, request counts): not part of the client."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        r = await c.request(method, path, json=body)
        r.raise_for_status()
        return r.json()


async def new_account(site_url: str, site_name: str | None = None) -> str:
    """Sign a fresh user up (through the API, as a real user would) and give it a site."""
    from fcapi.website import WebsiteClient

    email = new_email()
    await WebsiteClient.signup(site_url, email, SecretStr(PASSWORD), "Test", "User")
    async with WebsiteClient(site_url, email, SecretStr(PASSWORD), rate=30, burst=10) as c:
        await c.ensure_site(site_name or email.split("@")[0])
    return email
