"""A host-held site's website work, done by its own host: login check, site info, join.

A site marked `credentials: host` keeps its FeatureCloud password in a 0600 file on its host,
so the runner cannot log in as its user. What the runner would do with that login it has the
host do instead, over the connection it holds already: `python -m fcapi site-check`,
`site-info` and `site-join` (fcapi.cli.site) with the host's own fcapi. The project token goes
on stdin, never into the command line; the password never leaves the host. Whatever else a
phase needs of the website about such a site (the project's status, its members) the
coordinator's login answers.
"""

from __future__ import annotations

import json
import shlex

from fedinfra.inventory import SiteEntry
from runner.engine.context import RunContext, SiteRun
from runner.errors import RunFailed
from runner.sites.base import CommandResult, tail

#: how long a host's fcapi command may take (a login and a few paced requests)
HELD_COMMAND_TIMEOUT = 120.0
#: the shell's exit status for a program it cannot find
NOT_FOUND = 127


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


def _site_args(site: SiteEntry) -> list[str]:
    return ["--site-name", site.name, "--data-dir", site.controller.data_dir]


async def _on_host(
    run: RunContext, site: SiteRun, verb: str, *extra: str, stdin: str | None = None
) -> dict[str, object]:
    """Run one fcapi command on the site's host; its JSON line, or one line saying why not."""
    assert site.conn is not None
    entry = site.entry
    command = fcapi_command(
        entry,
        verb,
        run.options.website_url,
        "--rate",
        str(run.options.rate),
        "--burst",
        str(run.options.burst),
        *extra,
    )
    result = await site.conn.run(command, stdin=stdin, timeout=HELD_COMMAND_TIMEOUT)
    return parse_result(entry.name, verb, result)


def parse_result(name: str, verb: str, result: CommandResult) -> dict[str, object]:
    """The last stdout line as JSON; a failure is the host's own error line, named."""
    if not result.ok:
        why = tail(result.stderr or result.stdout).removeprefix("fcapi: error: ")
        if result.exit_status == NOT_FOUND:
            why += " (is fcapi installed there? provisioning puts it in <workdir>/fcapi)"
        raise RunFailed(f"site {name}: {verb} on its host (password held there) failed: {why}")
    lines = result.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1])
    except (IndexError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise RunFailed(
            f"site {name}: {verb} on its host gave no JSON line: {tail(result.stdout)!r}"
        )
    return data


async def check_login(run: RunContext, site: SiteRun) -> None:
    """The host's password file is there, 0600, and logs its user in: before any project."""
    await _on_host(run, site, "site-check")


async def write_site_info(run: RunContext, site: SiteRun) -> None:
    """The host writes its controller's site_info.json with its own login."""
    await _on_host(run, site, "site-info", *_site_args(site.entry))


async def join(run: RunContext, site: SiteRun, token: str) -> None:
    """The host joins with `token` (on stdin), after writing its site info."""
    assert run.project is not None
    project = ["--project", str(run.project.id)]
    await _on_host(run, site, "site-join", *_site_args(site.entry), *project, stdin=token + "\n")
