"""FeatureCloud passwords, from fedflow's `.env` format and from the environment.

fedflow users already keep a `.env` of `user@example.org=PASSWORD` lines; reading the same
file lets them switch without rewriting secrets. Passwords are wrapped in `SecretStr` as soon
as they are read so that no repr, log line or exception shows them, and there is no way to
pass one on the command line (argv is visible to every user of the machine).
"""

from __future__ import annotations

import os
import stat
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from fcapi.errors import MissingCredentials

__all__ = [
    "MissingCredentials",
    "PasswordFileWarning",
    "load_passwords",
    "parse_env",
    "password_for",
]

DEFAULT_ENV_FILE = Path(".env")
#: an alternative to a `USER=PASSWORD` variable, for shells that cannot name a variable
#: after an e-mail address: FC_USER names the user, FC_PASSWORD holds the password
USER_VAR = "FC_USER"
PASSWORD_VAR = "FC_PASSWORD"  # noqa: S105 - the name of a variable, not a password


class PasswordFileWarning(UserWarning):
    """A file holding passwords can be read by other users."""


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        if value[0] == '"':
            inner = inner.replace('\\"', '"').replace("\\\\", "\\")
        return inner
    # an unquoted value ends at an inline comment, as python-dotenv reads it
    hash_at = value.find(" #")
    return value[:hash_at].rstrip() if hash_at >= 0 else value


def parse_env(text: str) -> dict[str, str]:
    """Parse `.env` text: `KEY=VALUE` lines, `#` comments, optional `export `, quotes."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            continue
        out[key] = _unquote(value)
    return out


def _is_user(key: str) -> bool:
    """FeatureCloud users are e-mail addresses; other keys in a `.env` are settings."""
    return "@" in key


def _check_permissions(path: Path) -> None:
    if sys.platform == "win32":
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f"{path} holds passwords and is readable by other users "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}",
            PasswordFileWarning,
            stacklevel=3,
        )


def load_passwords(
    env_file: Path | None = None, environ: Mapping[str, str] = os.environ
) -> dict[str, SecretStr]:
    """Every `user -> password` known from the environment and a `.env` file.

    `env_file=None` reads `./.env` when it exists (fedflow's habit); a named file must exist.
    The environment contributes variables named after an e-mail address and the pair
    FC_USER/FC_PASSWORD. A file's lines win over the environment, as in fedflow.
    """
    passwords: dict[str, SecretStr] = {}
    for key, value in environ.items():
        if _is_user(key) and value:
            passwords[key] = SecretStr(value)
    user, password = environ.get(USER_VAR), environ.get(PASSWORD_VAR)
    if user and password:
        passwords[user] = SecretStr(password)

    path = env_file if env_file is not None else DEFAULT_ENV_FILE
    if env_file is None and not path.is_file():
        return passwords
    if not path.is_file():
        raise FileNotFoundError(f"env file {path} does not exist")
    _check_permissions(path)
    for key, value in parse_env(path.read_text(encoding="utf-8")).items():
        if _is_user(key) and value:
            passwords[key] = SecretStr(value)
    return passwords


def looked_in(env_file: Path | None) -> list[str]:
    """Where `load_passwords` looks, in words for an error message."""
    places = ["the environment"]
    places.append(str(env_file if env_file is not None else DEFAULT_ENV_FILE))
    return places


def password_for(
    user: str, passwords: Mapping[str, SecretStr], env_file: Path | None = None
) -> SecretStr:
    """The password of `user`, or `MissingCredentials` saying where it was looked for."""
    try:
        return passwords[user]
    except KeyError:
        raise MissingCredentials(user, looked_in(env_file)) from None
