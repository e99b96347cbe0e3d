"""Which class reaches a site, by the inventory's `transport`.

A module of its own, apart from runner.sites.base, so that the implementations import the base
and this names them, with no import the other way round. Entries are dotted paths imported on
first use: a run of local sites (the demo, the benchmark) then never loads asyncssh and its
cryptography stack, which cost every runner process about 16 MiB. A new transport is one module
deriving from `ShellConnection` and one line here (and its name in `SiteEntry.transport`).
"""

from __future__ import annotations

import importlib

from fedinfra.inventory import SiteEntry
from runner.sites.base import CONNECT_TIMEOUT, ShellConnection, SiteConnection

#: transport name -> "module:Class" of its `ShellConnection`
TRANSPORTS: dict[str, str] = {
    "ssh": "runner.sites.ssh:SshConnection",
    "local": "runner.sites.local:LocalConnection",
}


def connection_class(transport: str) -> type[ShellConnection]:
    """The class registered for `transport`, imported now if this is its first use."""
    module, _, name = TRANSPORTS[transport].partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, ShellConnection)):
        raise TypeError(f"transport {transport!r}: {TRANSPORTS[transport]} is no ShellConnection")
    return cls


def open_site(site: SiteEntry, *, connect_timeout: float = CONNECT_TIMEOUT) -> SiteConnection:
    """A connection object for the site's transport; nothing is dialled until `connect()`."""
    return connection_class(site.transport)(site, connect_timeout=connect_timeout)
