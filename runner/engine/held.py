"""A host-held site's website work in a run, done by its own host: login, site info, join.

What the runner would do with the site's login it has the host do instead (runner.sites.held),
paced as the run's own requests are. Whatever else a phase needs of the website about such a
site (the project's status, its members) the coordinator's login answers.
"""

from __future__ import annotations

from runner.engine.context import RunContext, SiteRun
from runner.sites.held import on_host


async def _run(
    run: RunContext, site: SiteRun, verb: str, *extra: str, stdin: str | None = None
) -> dict[str, object]:
    assert site.conn is not None
    options = run.options
    return await on_host(
        site.conn,
        verb,
        options.website_url,
        *extra,
        stdin=stdin,
        rate=options.rate,
        burst=options.burst,
    )


def _site_args(site: SiteRun) -> list[str]:
    return ["--site-name", site.entry.name, "--data-dir", site.entry.controller.data_dir]


async def check_login(run: RunContext, site: SiteRun) -> None:
    """The host's password file is there, 0600, and logs its user in: before any project."""
    await _run(run, site, "site-check")


async def write_site_info(run: RunContext, site: SiteRun) -> None:
    """The host writes its controller's site_info.json with its own login."""
    await _run(run, site, "site-info", *_site_args(site))


async def join(run: RunContext, site: SiteRun, token: str) -> None:
    """The host joins with `token` (on stdin), after writing its site info."""
    assert run.project is not None
    project = ["--project", str(run.project.id)]
    await _run(run, site, "site-join", *_site_args(site), *project, stdin=token + "\n")
