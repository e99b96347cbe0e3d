"""The fcapi commands a host-held site's host runs for itself, and what their answer means.

A site marked `credentials: host` keeps its FeatureCloud password in a 0600 file on its host,
so whatever needs its user's login runs there: `python -m fcapi site-check`, `site-info` and
`site-join` (fcapi.cli.site) with the host's own fcapi, over the connection the runner holds.
A token goes on stdin, never into the command line; the password never leaves the host. Used
by the run's phases (runner.engine.held) and by the readiness check of its login.
"""

from __future__ import annotations

import json
import shlex

from fedinfra.inventory import SiteEntry
from runner.sites.base import CommandResult, SiteConnection, SiteError, tail

#: how long a host's fcapi command may take (a login and a few paced requests)
HELD_COMMAND_TIMEOUT = 120.0
#: the shell's exit status for a program it cannot find
NOT_FOUND = 127


class HeldCommandFailed(SiteError):
    """The host's own fcapi command failed; the message is its error line, named."""


def fcapi_command(site: SiteEntry, verb: str, website_url: str, *extra: str) -> str:
    """`PYTHON -m fcapi VERB ...` for the site's host; every value from the inventory quoted."""
    assert site.password_file is not None
    args = [
        site.host_fcapi_python,
        "-m",
        "fcapi",
        verb,
        "--website-url",
        website_url,
        "--user",
        site.fc_user,
        "--credential-file",
        site.password_file,
        *extra,
    ]
    return " ".join(shlex.quote(a) for a in args)


def parse_result(name: str, verb: str, result: CommandResult) -> dict[str, object]:
    """The last stdout line as JSON; a failure is the host's own error line, named."""
    if not result.ok:
        why = tail(result.stderr or result.stdout).removeprefix("fcapi: error: ")
        if result.exit_status == NOT_FOUND:
            why += " (is fcapi installed there? provisioning puts it in <workdir>/fcapi)"
        raise HeldCommandFailed(name, f"{verb} on its host (password held there) failed: {why}")
    lines = result.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1])
    except (IndexError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise HeldCommandFailed(
            name, f"{verb} on its host gave no JSON line: {tail(result.stdout)!r}"
        )
    return data


async def on_host(
    conn: SiteConnection,
    verb: str,
    website_url: str,
    *extra: str,
    stdin: str | None = None,
    rate: float = 3.0,
    burst: int = 3,
) -> dict[str, object]:
    """Run one fcapi command on the connection's host; its JSON line, or `HeldCommandFailed`."""
    pace = ["--rate", str(rate), "--burst", str(burst)]
    command = fcapi_command(conn.site, verb, website_url, *pace, *extra)
    result = await conn.run(command, stdin=stdin, timeout=HELD_COMMAND_TIMEOUT)
    return parse_result(conn.site.name, verb, result)
