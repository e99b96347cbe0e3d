"""`python -m fcapi.emulator site|controller ...`: the emulator's servers as processes.

`python -m fcapi.emulator openapi` prints the website's OpenAPI document (what
docs/featurecloud-openapi.json holds). `python -m fcapi.emulator test APP_DIR --site DIR ...`
runs an engine app folder across sites offline (`fcapi.emulator.engine.testbed`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from fcapi.emulator.engine.folders import AppFolder, parse_spec
from fcapi.emulator.faults import Faults, FaultState


def _add_fault_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fault knobs (also GET|PUT /_emulator/faults)")
    g.add_argument("--latency-ms", type=float, help="added to every API request")
    g.add_argument("--error-rate", type=float, help="fraction of requests answered 5xx")
    g.add_argument("--error-status", type=int, help="the 5xx status sent (default 503)")
    g.add_argument("--seed", type=int, help="seed of the 5xx draw")
    g.add_argument("--burst-429", type=int, help="answer the next N requests 429")
    g.add_argument("--retry-after", type=float, help="Retry-After seconds with a 429")
    g.add_argument("--access-lifetime", type=float, help="access token lifetime, seconds")
    g.add_argument("--app-fail", metavar="SITE", help="site name (or *) whose app fails")
    g.add_argument("--app-hang", metavar="SITE", help="site name (or *) whose app hangs")
    g.add_argument("--die-mid-run", metavar="SITE", help="site name (or *) whose controller exits")


def _faults(args: argparse.Namespace) -> Faults:
    values: dict[str, Any] = {
        name: getattr(args, name)
        for name in Faults.model_fields
        if getattr(args, name, None) is not None
    }
    return Faults.model_validate(values)


def _add_app_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--app",
        metavar="SLUG=ID:DIR",
        action="append",
        default=[],
        help="register an app folder on FeatureCloud's engine under a slug and an id (repeatable)",
    )


def _folders(specs: list[str], kind: str) -> list[AppFolder]:
    try:
        return [parse_spec(spec) for spec in specs]
    except ValueError as exc:
        sys.exit(f"fcapi-emulator {kind}: {exc}")


def _add_test(sub: Any) -> None:
    t = sub.add_parser("test", help="run an engine app folder across sites, offline")
    t.add_argument("app_dir", type=Path, metavar="APP_DIR")
    t.add_argument(
        "--site",
        type=Path,
        action="append",
        required=True,
        metavar="DIR",
        help="a site's input files and config.yml (repeat; the first is the coordinator)",
    )
    t.add_argument("--json", action="store_true", help="print the outcome as JSON")
    t.add_argument("--deadline", type=float, default=600.0, help="seconds for the whole test")
    t.add_argument("--poll", type=float, default=1.0, help="seconds between status polls")
    t.add_argument("--outdir", type=Path, help="where the sites' outputs and logs go")


def run_testbed(args: argparse.Namespace) -> int:
    import asyncio

    from fcapi.emulator.engine.testbed import report, run_test
    from fcapi.emulator.engine.venvs import VenvError

    try:
        outcomes = asyncio.run(
            run_test(
                args.app_dir, args.site, seconds=args.deadline, poll=args.poll, outdir=args.outdir
            )
        )
    except (ValueError, VenvError) as exc:
        print(f"fcapi-emulator test: {exc}", file=sys.stderr)
        return 2
    return report(outcomes, args.json)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fcapi.emulator", description=__doc__)
    sub = p.add_subparsers(dest="kind", required=True)
    site = sub.add_parser("site", help="the website (featurecloud.ai)")
    site.add_argument("--host", default="127.0.0.1")
    site.add_argument("--port", type=int, default=8080)
    site.add_argument("--state", type=Path, help="JSON file that keeps state across restarts")
    _add_app_flag(site)
    _add_fault_flags(site)
    ctl = sub.add_parser("controller", help="one site's controller")
    ctl.add_argument("--site-url", required=True)
    ctl.add_argument("--data-dir", type=Path, required=True)
    ctl.add_argument("--host", default="127.0.0.1")
    ctl.add_argument("--port", type=int, default=8000)
    ctl.add_argument("--pid-file", type=Path)
    ctl.add_argument("--run-timeout", type=float, default=3600.0, help="deadline of one run, s")
    ctl.add_argument("--app-poll", type=float, default=1.0, help="s between engine app polls")
    _add_app_flag(ctl)
    _add_fault_flags(ctl)
    sub.add_parser("openapi", help="print the website's OpenAPI document (JSON) and exit")
    _add_test(sub)
    return p


def print_openapi() -> None:
    from fcapi.emulator.openapi import render
    from fcapi.emulator.site_context import SiteContext
    from fcapi.emulator.site_server import build_site_app

    sys.stdout.write(render(build_site_app(SiteContext(None, FaultState(Faults())))))


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.kind == "openapi":
        print_openapi()
        return
    if args.kind == "test":
        sys.exit(run_testbed(args))
    from fcapi.emulator.serve import serve_forever

    faults = FaultState(_faults(args))
    folders = _folders(args.app, args.kind)
    if args.kind == "site":
        from fcapi.emulator.apps import AppInfo, register
        from fcapi.emulator.site_context import SiteContext

        for f in folders:
            register(AppInfo(f.app_id, f.slug, f"{f.slug} (app folder)"))
        from fcapi.emulator.site_server import build_site_app

        try:
            site_ctx = SiteContext(args.state, faults)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            first = str(exc).splitlines()[0]
            sys.exit(f"fcapi-emulator site: cannot read the state file {args.state}: {first}")
        app = build_site_app(site_ctx)
        serve_forever(app, args.host, args.port, "site", on_exit=site_ctx.shutdown)
        return
    from fcapi.emulator.controller_server import ControllerContext, build_controller_app

    def die() -> None:
        sys.stderr.write("fcapi-emulator controller: exiting mid-run (fault die_mid_run)\n")
        sys.stderr.flush()
        os._exit(17)

    args.data_dir.mkdir(parents=True, exist_ok=True)
    ctx = ControllerContext(
        args.site_url,
        args.data_dir,
        faults,
        die=die,
        run_timeout=args.run_timeout,
        folders={f.slug: f for f in folders},
        app_poll=args.app_poll,
    )
    serve_forever(build_controller_app(ctx), args.host, args.port, "controller", args.pid_file)


if __name__ == "__main__":
    main()
