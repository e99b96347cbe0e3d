"""The transport registry: every entry resolves, and a local-only run never loads asyncssh."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runner.sites.base import ShellConnection
from runner.sites.registry import TRANSPORTS, connection_class


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_every_registered_transport_resolves_to_a_connection(transport: str) -> None:
    assert issubclass(connection_class(transport), ShellConnection)


def test_the_runner_loads_the_ssh_stack_only_for_ssh_sites() -> None:
    """asyncssh and cryptography cost each runner ~16 MiB; the demo's local sites need neither."""
    probe = (
        "import sys, runner.cli, runner.demo\n"
        "from runner.sites.registry import connection_class\n"
        "connection_class('local')\n"
        "print('asyncssh' in sys.modules)\n"
        "connection_class('ssh')\n"
        "print('asyncssh' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "True"]
