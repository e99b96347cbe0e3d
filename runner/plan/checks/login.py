"""`login`: the site's FeatureCloud user logs in with the password the runner holds.

On the run's own pool: the login made here is the one the run then uses (one per user per
run). A wrong password or an unknown user is bad input (exit 2 in a run, as before any run
folder); a website that is down is too, since nothing could have been touched.
"""

from __future__ import annotations

from fcapi.errors import AuthError, FcError, NotFound, PermissionDenied, TransportError, one_line
from fcapi.website import WebsitePool
from fedinfra.inventory import SiteEntry
from runner.errors import EXIT_BAD_INPUT, EXIT_SITES_FAILED
from runner.plan.checks.base import Verdict, WebsiteCheck, failed, passed
from runner.sites.base import SiteError
from runner.sites.held import on_host
from runner.sites.registry import open_site

#: what the website's answer means for the user: their input is wrong, or the platform is down
BAD_INPUT = (AuthError, PermissionDenied, NotFound, TransportError)


class Login(WebsiteCheck):
    name = "login"

    async def check(self, site: SiteEntry, pool: WebsitePool) -> Verdict:
        user = site.fc_user
        if site.host_held:
            return await _on_its_host(site, pool.base_url)
        try:
            await pool.logged_in(user)
        except FcError as exc:
            code = EXIT_BAD_INPUT if isinstance(exc, BAD_INPUT) else EXIT_SITES_FAILED
            line = " ".join(f"FeatureCloud user {user}: {exc}".split())
            return Verdict("fail", line, {"user": user}, exit_code=code)
        return passed(f"FeatureCloud user {user} logged in", user=user)


async def _on_its_host(site: SiteEntry, website_url: str) -> Verdict:
    """A host-held site's user logs in on its host: the runner has no password for it."""
    user = site.fc_user
    try:
        async with open_site(site) as conn:
            await on_host(conn, "site-check", website_url)
    except SiteError as exc:
        why = one_line(str(exc)).removeprefix(f"site {site.name}: ")
        return failed(f"FeatureCloud user {user}: {why}", user=user)
    return passed(f"FeatureCloud user {user} logged in on its host (held there)", user=user)
