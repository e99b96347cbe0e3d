"""cloud-init documents for machines fedstack creates (libvirt VMs, EC2 instances).

The stack generates each machine's SSH host key and installs it here (`ssh_keys`), so the
inventory can pin it before the machine ever boots: nobody has to trust a key on first use.
No other host key type is generated, so the pinned key is the only one the host offers.
Pure functions returning text; `cloud-init schema` checks their output in the tests.
"""

from __future__ import annotations

import hashlib

import yaml


def render_user_data(
    *,
    hostname: str,
    host_private_key: str,
    host_public_key: str,
    login_user: str | None = None,
    authorized_keys: tuple[str, ...] = (),
) -> str:
    """`#cloud-config` user-data.

    With `login_user`, cloud-init creates that user (passwordless sudo, the given keys), as on
    libvirt VMs. Without it the image's default user stays (on EC2 it gets the key pair's key).
    """
    doc: dict[str, object] = {
        "hostname": hostname,
        "preserve_hostname": False,
        "ssh_pwauth": False,
        "disable_root": True,
        "ssh_deletekeys": True,
        # only types whose key file is missing are generated: ours is written first, so this
        # generates nothing, and no RSA/ECDSA key appears that the inventory would not pin
        "ssh_genkeytypes": ["ed25519"],
        "ssh_keys": {
            "ed25519_private": host_private_key.strip() + "\n",
            "ed25519_public": host_public_key.strip(),
        },
    }
    if login_user is not None:
        doc["users"] = [
            {
                "name": login_user,
                "gecos": "fedstack",
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": True,
                "ssh_authorized_keys": [k.strip() for k in authorized_keys],
            }
        ]
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)
    return "#cloud-config\n" + body


def render_meta_data(*, hostname: str, user_data: str) -> str:
    """NoCloud meta-data; the instance-id follows the user-data, so changed user-data re-runs."""
    digest = hashlib.sha256(user_data.encode("utf-8")).hexdigest()[:12]
    return yaml.safe_dump(
        {"instance-id": f"{hostname}-{digest}", "local-hostname": hostname}, sort_keys=False
    )
