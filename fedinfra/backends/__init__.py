"""The registry of backends, in the order their sites are declared and their names listed.

A new backend is one module beside these (see `base.py` for the contract), its test, and one
line here.
"""

from __future__ import annotations

from typing import Any

from fedinfra.backends.aws import AwsBackend
from fedinfra.backends.base import Backend
from fedinfra.backends.libvirt import LibvirtBackend
from fedinfra.backends.ssh import SshBackend

#: by name, which is also the site's key in the stack file
BACKENDS: dict[str, Backend[Any]] = {
    b.name: b
    for b in (
        LibvirtBackend(),
        AwsBackend(),
        SshBackend(),
    )
}

__all__ = ["BACKENDS", "Backend"]
