"""The workflow's apps on the website: each step's slug as the app it names, in order.

The preflight and the project's creation both need it; the app list is read once for all the
steps (a workflow of several apps costs one request, not one per step), and a slug the site
does not list is one `MissingApp` naming that slug, its place in the workflow and what the
site has instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from fcapi.errors import NotFound
from fcapi.models import App
from fcapi.website import WebsiteClient


class MissingApp(NotFound):
    """A step's slug that the site does not list; `step` is its place (0-based)."""

    def __init__(self, message: str, *, step: int) -> None:
        super().__init__(message, endpoint="GET /api/apps/")
        self.step = step


async def workflow_apps(web: WebsiteClient, slugs: Sequence[str]) -> list[App]:
    """The app of every slug, in the workflow's order; `MissingApp` for the first unknown one."""
    listed = await web.apps()
    by_slug = {app.slug: app for app in listed}
    found: list[App] = []
    for step, slug in enumerate(slugs):
        app = by_slug.get(slug)
        if app is None:
            known = ", ".join(sorted(by_slug)) or "none"
            raise MissingApp(f"no app {slug!r} on the site; apps: {known}", step=step)
        found.append(app)
    return found
