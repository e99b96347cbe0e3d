"""The FeatureCloud password of every user the run logs in as, gathered before anything runs.

Passwords come from the environment and a `.env` file (fedflow's `USER=PASSWORD` lines, read
by `fcapi.credentials`) and from the stack's secret config (the inventory's `credentials`).
The user's own environment wins over the stack, so a rotated password can be given without
touching the stack. Never from argv: every user of the machine can read it. A missing password
is found now, for every user at once, rather than at a login halfway through the run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from fcapi.credentials import EnvFileError, load_passwords, looked_in
from fedinfra.inventory import Inventory
from runner.errors import BadInput

STACK_SOURCE = "the stack's secret config (inventory credentials)"


class MissingPasswords(BadInput):
    """Users without a password; the message is one line naming them and where we looked."""

    def __init__(self, users: list[str], places: list[str]) -> None:
        self.users = users
        self.looked_in = places
        first = users[0]
        super().__init__(
            f"no FeatureCloud password for {', '.join(users)}: looked in {', '.join(places)}; "
            f"add lines like '{first}=PASSWORD' to the .env file (chmod 600) or set them "
            "in the environment"
        )


def run_users(inventory: Inventory) -> list[str]:
    """The FeatureCloud users the runner logs in as, each once, in inventory order.

    A host-held site's user is not one: its host logs in with its own password file, and
    the runner neither asks for that password nor keeps it if the environment has it.
    """
    return list(dict.fromkeys(site.fc_user for site in inventory.sites if not site.host_held))


def passwords_for_run(
    inventory: Inventory,
    *,
    env_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, SecretStr]:
    """A password for every runner-held site's user (and only those), or `MissingPasswords`.

    `env_file=None` reads `./.env` if there is one; a named file must exist (a typo in the
    name should not silently fall back to the stack's passwords).
    """
    try:
        local = load_passwords(env_file, environ)
    except FileNotFoundError:
        raise MissingPasswords(run_users(inventory), [f"{env_file} (no such file)"]) from None
    except EnvFileError as exc:
        raise BadInput(str(exc)) from None
    merged = {**inventory.credentials, **local}
    users = run_users(inventory)
    missing = [u for u in users if u not in merged]
    if missing:
        raise MissingPasswords(missing, [*looked_in(env_file), STACK_SOURCE])
    return {u: merged[u] for u in users}
