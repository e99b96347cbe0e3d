"""`python -m runner check (--stack S | --inventory F | --demo) [--json]`: is every site ready?

A coordinator asks before a run whether every site can take part: reachable with its pinned
key, the controller's runtime there, its port free (or a controller of ours on it), room in
its data dir, its clock near ours, its user's login valid. The same checks open every run
(runner.plan.preflight), so what this says is what the run will find. One line per problem,
naming the site and the check; `--json` reports every check of every site, passed or not.

Exit codes (runner.errors): 0 every site ready, 11 one or more sites not ready
(EXIT_SITES_FAILED, as a run that fails at sites), 2 bad input (arguments, inventory,
passwords), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from pydantic import SecretStr

from fcapi import DEFAULT_WEBSITE_URL
from fcapi.errors import one_line
from fcapi.website import WebsitePool
from fedinfra.inventory import Inventory
from runner.collect.unpack import parse_size
from runner.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SITES_FAILED, BadInput, RunnerError
from runner.plan.checks import check_names
from runner.plan.checks.base import MAX_CLOCK_OFFSET, MIN_FREE_BYTES, Limits
from runner.plan.checks.sites import Readiness, check_sites
from runner.plan.credentials import passwords_for_run
from runner.plan.inventory_source import load_inventory
from runner.plan.preflight import check_website_url
from runner.plan.workflow import parse_duration

#: the whole check; a site or a website that takes longer is reported as not answering
CHECK_DEADLINE = 120.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{message} (see python -m runner check --help)")


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        return parse_duration(int(text) if text.isdigit() else text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m runner check", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--stack", help="Pulumi stack whose output 'inventory' lists the sites")
    src.add_argument("--inventory", type=Path, help="inventory JSON file")
    src.add_argument("--demo", action="store_true", help="the demo's federation on this machine")
    p.add_argument("--project-dir", type=Path, default=Path.cwd(), help="folder of Pulumi.yaml")
    p.add_argument("--env-file", type=Path, help="USER=PASSWORD lines (default: ./.env if any)")
    p.add_argument(
        "--website-url", default=os.environ.get("FCAPI_WEBSITE_URL", DEFAULT_WEBSITE_URL)
    )
    p.add_argument("--sites", type=int, default=3, help="demo sites (default: 3)")
    p.add_argument(
        "--min-free-disk",
        type=_size,
        default=MIN_FREE_BYTES,
        metavar="SIZE",
        help="free space a controller's data dir needs (default: 512MiB)",
    )
    p.add_argument(
        "--max-clock-offset",
        type=_seconds,
        default=MAX_CLOCK_OFFSET,
        metavar="DURATION",
        help=f"how far a host's clock may be off the runner's (default: {MAX_CLOCK_OFFSET:g}s)",
    )
    p.add_argument("--json", action="store_true", help="every check of every site as JSON")
    return p


async def run_checks(
    inventory: Inventory, passwords: dict[str, SecretStr], website_url: str, limits: Limits
) -> Readiness:
    check_website_url(website_url)
    pool = WebsitePool(website_url, passwords)
    try:
        async with asyncio.timeout(CHECK_DEADLINE):
            return await check_sites(inventory, pool, limits)
    except TimeoutError:
        raise BadInput(
            f"the checks did not end within {CHECK_DEADLINE:g} s: the website {website_url} "
            "or a site does not answer"
        ) from None
    finally:
        await pool.aclose()


async def demo_checks(args: argparse.Namespace, limits: Limits) -> Readiness:
    """The demo's federation (emulated website, local sites) made, checked and removed."""
    from runner.demo import build_federation, create_accounts, emulated_website

    work = Path(tempfile.mkdtemp(prefix="fedstack-check-demo-"))
    try:
        async with emulated_website() as url:
            passwords = await create_accounts(url, args.sites)
            fed = build_federation(url, passwords, work, work / "runs")
            return await run_checks(fed.inventory, fed.passwords, url, limits)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def gather(args: argparse.Namespace) -> Readiness:
    limits = Limits(min_free_bytes=args.min_free_disk, max_clock_offset=args.max_clock_offset)
    if args.demo:
        return await demo_checks(args, limits)
    inventory = await asyncio.to_thread(
        load_inventory, stack=args.stack, inventory_file=args.inventory, work_dir=args.project_dir
    )
    passwords = passwords_for_run(inventory, env_file=args.env_file)
    return await run_checks(inventory, passwords, args.website_url, limits)


def report(readiness: Readiness, as_json: bool) -> int:
    """One line per problem on stderr; on stdout a count, or with --json every check.

    The problem lines go to stderr in either mode, so a script reading the JSON on stdout
    still leaves a person something to read.
    """
    code = EXIT_SITES_FAILED if readiness.problems else EXIT_OK
    for problem in readiness.problems:
        print(f"runner check: {problem.line()}", file=sys.stderr)
    if as_json:
        sites: dict[str, dict[str, object]] = {}
        for r in readiness.results:
            sites.setdefault(r.site, {})[r.check] = r.as_json()
        document = {
            "ready": not readiness.problems,
            "checks": check_names(),
            "sites": sites,
            "problems": [r.line() for r in readiness.problems],
            "exit_code": code,
        }
        print(json.dumps(document, indent=2, sort_keys=True))
        return code
    names = list(dict.fromkeys(r.site for r in readiness.results))
    not_ready = readiness.not_ready()
    tail = f"; not ready: {', '.join(not_ready)}" if not_ready else ""
    print(f"{len(names) - len(not_ready)} of {len(names)} sites ready{tail}")
    return code


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        return report(asyncio.run(gather(args)), args.json)
    except KeyboardInterrupt:
        print("runner check: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RunnerError as exc:
        print(f"runner check: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
