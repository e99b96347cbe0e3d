"""`list-apps`: the apps on the site, which needs no account."""

from __future__ import annotations

from pydantic import SecretStr

from fcapi.cli.base import AddCommand, Ctx
from fcapi.website import WebsiteClient


def register(add: AddCommand) -> None:
    add("list-apps", "list the apps on the site", cmd_list_apps)


async def cmd_list_apps(ctx: Ctx) -> None:
    user = ctx.args.user or ""
    site = WebsiteClient(ctx.args.website_url, user, SecretStr(""), rate=ctx.args.rate)
    async with site:
        apps = await site.apps()
    ctx.out.result(apps, [f"{app.id}\t{app.slug}\t{app.name or ''}".rstrip() for app in apps])
