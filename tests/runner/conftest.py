"""Fixtures for the runner's tests: OpenSSH test hosts in network namespaces (tests/testhosts.py)"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from tests.testhosts import NetnsHost, test_hosts


@pytest.fixture
def netns_hosts() -> Iterator[Callable[[int], list[NetnsHost]]]:
    """A factory: `netns_hosts(n)` makes n fresh hosts, all removed when the test ends."""
    with contextlib.ExitStack() as stack:

        def make(n: int) -> list[NetnsHost]:
            return stack.enter_context(test_hosts(n))

        yield make


@pytest.fixture
def three_hosts() -> Iterator[list[NetnsHost]]:
    """Three fresh OpenSSH hosts (own address, localhost, sshd, host key, workdir each)."""
    with test_hosts(3) as hosts:
        yield hosts
