"""`site-check`, `site-info`, `site-join`: a host-held site's host logs in and joins by itself.

A site whose FeatureCloud password must not leave its machine keeps it in a file only its
admin (or provisioning, from that site's own secret) can read. The coordinator's runner then
has the host run these commands over the connection it holds anyway: the host logs in with
the file, writes its site's `site_info.json` for its controller, and joins with the token the
runner hands over on stdin. Each prints one JSON line (the runner reads it); the password and
the token never reach argv, stdout or stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import stat
from pathlib import Path

from pydantic import SecretStr

from fcapi.cli.base import AddCommand, Ctx, UsageError, positive_int
from fcapi.errors import FcError, NotFound, PermissionDenied
from fcapi.files import UnreadableFile, read_bounded, write_atomic
from fcapi.website import WebsiteClient

SITE_INFO = "site_info.json"
#: a password file holds one line; anything larger is not one
MAX_PASSWORD_FILE = 4096


def register(add: AddCommand) -> None:
    check = add("site-check", "log in with this host's password file (a host-held site)", cmd_check)
    _held_options(check)
    info = add(
        "site-info", "write this site's site_info.json for its controller (host-held)", cmd_info
    )
    _held_options(info)
    _site_options(info)
    join = add(
        "site-join",
        "join a project with the token on stdin, after writing site_info.json (host-held)",
        cmd_join,
    )
    _held_options(join)
    _site_options(join)
    join.add_argument("-p", "--project", type=positive_int, required=True, help="project id")


def _held_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--credential-file",
        type=Path,
        required=True,
        help="this site's password file (mode 0600, the password on its first line)",
    )


def _site_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site-name", required=True, help="the site's name, if it has no site yet")
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="the controller's data dir on this host"
    )


def read_password_file(path: Path) -> SecretStr:
    """The password in `path`, or one line naming the path and what is wrong with it.

    Refused unless only its owner may read it: a password file others can read is not held by
    the site any more.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise UsageError(f"password file {path}: no such file on this host") from None
    except OSError as exc:
        raise UsageError(f"password file {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(
            f"password file {path}: mode {mode:o}, readable by others; run: chmod 600 {path}"
        )
    try:
        raw = read_bounded(path, MAX_PASSWORD_FILE)
    except UnreadableFile as exc:
        raise UsageError(f"password file {path}: not readable ({exc.reason})") from None
    except OSError as exc:
        raise UsageError(f"password file {path}: not readable ({exc.strerror or exc})") from None
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if not lines or not lines[0]:
        raise UsageError(f"password file {path}: empty (the password goes on its first line)")
    return SecretStr(lines[0])


def _website(ctx: Ctx) -> WebsiteClient:
    a = ctx.args
    password = read_password_file(a.credential_file)
    return WebsiteClient(a.website_url, ctx.user(), password, rate=a.rate, burst=a.burst)


def _line(ctx: Ctx, data: dict[str, object]) -> None:
    """One JSON line whatever `--json` says: the runner reads it."""
    ctx.out.stdout.write(json.dumps(data, sort_keys=True) + "\n")
    ctx.out.stdout.flush()


async def cmd_check(ctx: Ctx) -> None:
    async with _website(ctx) as web:
        await web.login()
    _line(ctx, {"user": web.user, "login": "ok"})


async def _write_site_info(ctx: Ctx, web: WebsiteClient) -> dict[str, object]:
    site = await web.ensure_site(ctx.args.site_name)
    data_dir: Path = ctx.args.data_dir
    await asyncio.to_thread(_write, data_dir, site.model_dump_json())
    return {"user": web.user, "site_id": site.id, "site_info": str(data_dir / SITE_INFO)}


def _write(data_dir: Path, text: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(data_dir / SITE_INFO, text, 0o600)


async def cmd_info(ctx: Ctx) -> None:
    async with _website(ctx) as web:
        done = await _write_site_info(ctx, web)
    _line(ctx, done)


async def cmd_join(ctx: Ctx) -> None:
    token = ctx.stdin.readline().strip()
    if not token:
        raise UsageError("site-join: no token on stdin")
    project_id: int = ctx.args.project
    async with _website(ctx) as web:
        done = await _write_site_info(ctx, web)
        try:
            await web.join(token)
        except FcError:
            # a token used by an earlier attempt whose answer was lost: fine if a member now
            if not await _is_member(web, project_id):
                raise
        done |= {"project": project_id, "joined": True}
    _line(ctx, done)


async def _is_member(web: WebsiteClient, project_id: int) -> bool:
    try:
        await web.get_project(project_id)
    except (NotFound, PermissionDenied):
        return False
    return True
