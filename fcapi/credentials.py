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

from fcapi.errors import ExitCode, FcError, MissingCredentials
from fcapi.files import UnreadableFile, read_bounded

__all__ = [
    "EnvFileError",
    "MissingCredentials",
    "PasswordFileWarning",
    "load_passwords",
    "parse_env",
    "password_for",
    "scrubbed_environ",
]

DEFAULT_ENV_FILE = Path(".env")
#: an alternative to a `USER=PASSWORD` variable, for shells that cannot name a variable
#: after an e-mail address: FC_USER names the user, FC_PASSWORD holds the password
USER_VAR = "FC_USER"
PASSWORD_VAR = "FC_PASSWORD"  # noqa: S105 - the name of a variable, not a password
#: a `.env` is a handful of lines; anything bigger is not one (and is not read into memory)
MAX_ENV_BYTES = 1 << 20
#: variables a child process never needs and must not see: they name secrets
_SECRET_WORDS = ("PASSWORD", "PASSWD", "TOKEN", "SECRET", "PASSPHRASE", "PRIVATE_KEY")


class EnvFileError(FcError):
    """A `.env` that cannot be read as one: one line naming the file and why."""

    exit_code = ExitCode.USAGE


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
    if env_file is None and not os.path.lexists(path):
        return passwords
    if not os.path.lexists(path):
        raise FileNotFoundError(f"env file {path} does not exist")
    for key, value in parse_env(read_env_file(path)).items():
        if _is_user(key) and value:
            passwords[key] = SecretStr(value)
    return passwords


def read_env_file(path: Path) -> str:
    """The text of a `.env`, or `EnvFileError`: a folder, a FIFO (which would hang the read),
    a device, an unreadable, oversized or non-UTF-8 file each say so."""
    try:
        raw = read_bounded(path, MAX_ENV_BYTES)
    except UnreadableFile as exc:
        raise EnvFileError(f"env file {path}{_ENV_REFUSALS[exc.reason].format(e=exc)}") from None
    _check_permissions(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvFileError(f"env file {path}: not UTF-8 text (byte {exc.start})") from None


_ENV_REFUSALS = {
    "missing": ": {e.detail}",
    "stat": ": {e.detail}",
    "read": ": cannot read it: {e.detail}",
    "folder": " is a folder, not a file of USER=PASSWORD lines",
    "special": " is not a regular file (a FIFO or a device?)",
    "too_big": f" is {{e.size}} bytes, over {MAX_ENV_BYTES}",
    "grew": f" is {{e.size}} bytes, over {MAX_ENV_BYTES}",
}


def scrubbed_environ(
    environ: Mapping[str, str] = os.environ, *, featurecloud_only: bool = False
) -> dict[str, str]:
    """`environ` without FeatureCloud passwords or anything named like a secret: what a child
    process (a controller's start shell, a helper command) gets. It needs none of them, and a
    process's environment can be read by whoever can read its /proc entry.

    `featurecloud_only` keeps other secrets, for a child that needs its own (pulumi reads its
    access token and the state backend's credentials from the environment).
    """
    return {
        key: value
        for key, value in environ.items()
        if not _is_user(key)
        and key != PASSWORD_VAR
        and (featurecloud_only or not any(word in key.upper() for word in _SECRET_WORDS))
    }


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
