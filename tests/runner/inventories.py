"""Small inventories for the runner's tests (built in code: no files, no Pulumi)."""

from __future__ import annotations

from typing import Any

from fedinfra.inventory import Inventory

PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material-xyz\n-----END"


def inventory_dict(names: tuple[str, ...] = ("alpha", "beta", "gamma")) -> dict[str, Any]:
    sites = []
    for i, name in enumerate(names):
        sites.append(
            {
                "name": name,
                "fc_user": f"{name}@example.org",
                "role": "coordinator" if i == 0 else "participant",
                "transport": "ssh",
                "ssh": {
                    "address": f"10.0.0.{i + 10}",
                    "user": "fed",
                    "private_key": PRIVATE_KEY,
                    "host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"],
                },
                "workdir": "/srv/fedstack",
                "controller": {"data_dir": "/srv/fedstack/data"},
            }
        )
    return {
        "version": 1,
        "stack": "sim",
        "sites": sites,
        "credentials": {"alpha@example.org": "pw-alpha-s3cret"},
    }


def make_inventory(names: tuple[str, ...] = ("alpha", "beta", "gamma")) -> Inventory:
    return Inventory.model_validate(inventory_dict(names))
