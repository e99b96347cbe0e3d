"""Which class reaches a site, by the inventory's `transport`.

A module of its own, apart from runner.sites.base, so that the implementations import the base
and this imports them, with no import the other way round. A new transport is one module
deriving from `ShellConnection` and one line here (and its name in `SiteEntry.transport`).
"""

from __future__ import annotations

from fedinfra.inventory import SiteEntry
from runner.sites.base import CONNECT_TIMEOUT, ShellConnection, SiteConnection
from runner.sites.local import LocalConnection
from runner.sites.ssh import SshConnection

TRANSPORTS: dict[str, type[ShellConnection]] = {
    "ssh": SshConnection,
    "local": LocalConnection,
}


def open_site(site: SiteEntry, *, connect_timeout: float = CONNECT_TIMEOUT) -> SiteConnection:
    """A connection object for the site's transport; nothing is dialled until `connect()`."""
    return TRANSPORTS[site.transport](site, connect_timeout=connect_timeout)
