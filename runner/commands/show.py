"""`python -m runner show RUN_ID [--outdir DIR] [--json]`: one run, its outcome and its answer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runner.commands.args import parse, run_command
from runner.outputs.runlist import detail, outdir_of


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runner show", description="Show one run.")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id, as `python -m runner runs` lists")
    p.add_argument("--outdir", type=Path, help="where the run folders are (default: runs)")
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    return p


def lines(d: dict[str, object]) -> list[str]:
    out = [
        f"run {d['run_id']}: {d['status']}",
        f"  app {d.get('app') or '-'}, stack {d['stack']}, project {d['project_id']}, "
        f"coordinator {d['coordinator']}",
        f"  started {d['started_at']}, finished {d['finished_at']}, took {d['wall_seconds']} s, "
        f"{d['website_requests']} website requests",
        f"  result: {d['result']}",
    ]
    per_site = d["per_site"]
    assert isinstance(per_site, dict)
    for name, site in per_site.items():
        values = ", ".join(f"{k}={v}" for k, v in site["values"].items()) or "no value"
        error = f" ({site['error']})" if site.get("error") else ""
        out.append(f"  {name}: {site['status']}{error}; {values}")
    if d.get("error"):
        out.append(f"  error: {d['error']}")
    out.append(f"  report: {d['report']}")
    return out


def _show(argv: list[str]) -> int:
    args = parse(build_parser(), argv)
    d = detail(outdir_of(args.outdir), args.run_id)
    print(json.dumps(d, indent=2) if args.json else "\n".join(lines(d)))
    return 0


def main(argv: list[str]) -> int:
    return run_command(_show, argv)
