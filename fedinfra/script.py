"""The shell scripts fedinfra runs on hosts, as text, and what goes on their stdin.

Scripts are files (`provision.sh`, `check.sh`) so that shellcheck and a real Debian root can
test exactly what is shipped. They run as `bash -s` with settings and script on stdin, because
stdin is the one channel that keeps values (some of them secret) out of argv, process lists
and the command text Pulumi logs. Pure functions only: no Pulumi here.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Mapping
from importlib import resources

PROVISION_SCRIPT = "provision.sh"
CHECK_SCRIPT = "check.sh"

#: what provisioning pip-installs on a host with a host-held site (fedstack carries fcapi): a
#: name from PIP_INDEX_URL or PyPI, or a wheel's path or URL
FCAPI_PACKAGE = "fedstack"

#: the remote command of every scripted step; the script itself arrives on stdin
RUN_STDIN = "bash -s"

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def load_script(name: str) -> str:
    """The text of a script shipped in the fedinfra package."""
    return resources.files("fedinfra").joinpath(name).read_text(encoding="utf-8")


def script_sha256(text: str) -> str:
    """Content hash used as the provisioning trigger: a changed script re-runs on every host."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render_stdin(settings: Mapping[str, str], script: str) -> str:
    """`export NAME='value'` lines for the settings, then the script, for `bash -s`.

    Values are shell-quoted, so any text (a token with quotes or `$`) arrives unchanged.
    """
    lines = []
    for name, value in settings.items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"not a shell variable name: {name!r}")
        lines.append(f"export {name}={shlex.quote(value)}")
    return "\n".join([*lines, script])


def provision_settings(
    *,
    workdir: str,
    fc_version: str,
    docker_required: bool,
    pip_index_url: str | None = None,
    fcapi_package: str | None = None,
    password_file: str | None = None,
    fc_password: str | None = None,
) -> dict[str, str]:
    """The settings provision.sh reads, from typed values.

    A host-held site's host gets fcapi (`fcapi_package`) and, when the site's own stack holds
    its password, the 0600 `password_file` written from `fc_password` (stdin only, as ever).
    """
    settings = {
        "FEDSTACK_WORKDIR": workdir,
        "FEDSTACK_FC_VERSION": fc_version,
        "FEDSTACK_DOCKER_REQUIRED": "1" if docker_required else "0",
    }
    if pip_index_url:
        settings["PIP_INDEX_URL"] = pip_index_url
    if fcapi_package:
        settings["FEDSTACK_FCAPI_PACKAGE"] = fcapi_package
    if password_file:
        settings["FEDSTACK_PASSWORD_FILE"] = password_file
    if fc_password:
        settings["FEDSTACK_FC_PASSWORD"] = fc_password
    return settings


def readiness_command(*, cloud_init: bool) -> str:
    """The readiness gate's command.

    On machines fedstack made, cloud-init must have finished (host keys, users): exit 2 from
    `cloud-init status --wait` means "done, with recoverable warnings" on newer cloud-init and
    counts as ready. On bring-your-own hosts a harmless probe only proves SSH and the pinned
    host key work.
    """
    if not cloud_init:
        return 'echo "fedstack-ready $(uname -sm)"'
    return (
        "rc=0; cloud-init status --wait >/dev/null || rc=$?; "
        'if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then cloud-init status --long >&2; exit "$rc"; fi; '
        'echo "fedstack-ready $(uname -sm)"'
    )


def cleanup_command(*, workdir: str, stop_command: str, controller_name: str) -> str:
    """What `pulumi destroy` runs on a bring-your-own host, as one `set -eu` script.

    Stops fedstack's own controller (by its name) and removes fedstack's working directory,
    nothing else: never other containers, images or volumes of a host fedstack does not own.
    Provisioning made the workdir with sudo under a root-owned parent, and the controller's
    container wrote root's files into it, so removal goes through `sudo -n` unless the login is
    root. Any step that cannot do its job ends the script with a non-zero exit and a line on
    stderr, so `pulumi destroy` fails instead of reporting a host it did not clean. Refuses to
    remove `/`, the login user's home or a path with fewer than two components.
    """
    if not workdir.startswith("/") or workdir.rstrip("/").count("/") < 2 or "\n" in workdir:
        raise ValueError(f"refusing a cleanup of workdir {workdir!r}: not a dedicated directory")
    if not _CONTAINER_NAME.match(controller_name):
        raise ValueError(f"not a container name: {controller_name!r}")
    name = controller_name
    return "\n".join(
        [
            "set -eu",
            f"w={shlex.quote(workdir.rstrip('/'))}",
            'fail() { echo "fedstack-cleanup: ERROR: $*" >&2; exit 1; }',
            'root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }',
            # the CLI may be gone or the controller already stopped: the container check follows
            f"({stop_command}) >/dev/null 2>&1 || true",
            "if command -v docker >/dev/null 2>&1; then",
            f"  ids=$(docker ps -aq --filter name=^/{name}$ 2>/dev/null"
            f" || root docker ps -aq --filter name=^/{name}$ 2>/dev/null || true)",
            '  if [ -n "$ids" ]; then',
            f"    docker rm -f {name} >/dev/null 2>&1 || root docker rm -f {name} >/dev/null"
            f' || fail "cannot remove container {name}"',
            "  fi",
            "fi",
            '[ "$w" != "${HOME:-}" ] || fail "refusing to remove the home directory $w"',
            'if [ -e "$w" ]; then root rm -rf -- "$w" || fail "cannot remove $w"; fi',
            '[ ! -e "$w" ] || fail "cannot remove $w"',
            'if [ "$(readlink /usr/local/bin/featurecloud 2>/dev/null || true)" = '
            '"$w/venv/bin/featurecloud" ]; then',
            "  root rm -f /usr/local/bin/featurecloud"
            ' || fail "cannot remove /usr/local/bin/featurecloud"',
            "fi",
            'echo "fedstack-cleanup: removed $w"',
        ]
    )
