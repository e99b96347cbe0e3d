"""`signup`: a new account and its site, the password read from stdin or the .env file."""

from __future__ import annotations

from pydantic import SecretStr

from fcapi.cli.base import AddCommand, Ctx, UsageError, email
from fcapi.website import WebsiteClient


def register(add: AddCommand) -> None:
    signup = add("signup", "create an account and its site", cmd_signup)
    signup.add_argument("--email", type=email, required=True)
    signup.add_argument("--first-name", default="")
    signup.add_argument("--last-name", default="")
    signup.add_argument("--site-name", help="name of the account's site (default: the e-mail)")
    signup.add_argument("--role", default="user", help="account role (default: user)")
    signup.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the new password from stdin (else from the environment or .env)",
    )


async def cmd_signup(ctx: Ctx) -> None:
    a = ctx.args
    if a.password_stdin:
        line = ctx.stdin.readline().rstrip("\n")
        if not line:
            raise UsageError("--password-stdin: stdin gave no password")
        password = SecretStr(line)
    else:
        password = ctx.password(a.email)
    user = await WebsiteClient.signup(
        a.website_url, a.email, password, a.first_name, a.last_name, role=a.role
    )
    async with WebsiteClient(a.website_url, a.email, password, rate=a.rate, burst=a.burst) as s:
        site = await s.ensure_site(a.site_name or a.email)
    ctx.out.result(
        {"user": user, "site": {"id": site.id, "name": site.name}},
        [f"created user {a.email} with site {site.name!r} ({site.id})"],
    )
