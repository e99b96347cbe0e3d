"""`python -m runner runs [--outdir DIR] [--json]`: the runs of an output folder at a glance."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runner.commands.args import parse, run_command
from runner.outputs.runlist import outdir_of, row, run_ids


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runner runs", description="List the runs of an output folder."
    )
    p.add_argument("--outdir", type=Path, help="where the run folders are (default: runs)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    return p


def _seconds(value: object) -> str:
    return f"{value:.1f} s" if isinstance(value, float | int) else "-"


def _list(argv: list[str]) -> int:
    args = parse(build_parser(), argv)
    outdir = outdir_of(args.outdir)
    rows = [row(outdir, run_id) for run_id in run_ids(outdir)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs in {outdir}")
        return 0
    print(
        f"{'run':<21} {'started':<25} {'app':<14} {'sites':>5} {'outcome':<10} {'took':>8}  result"
    )
    for r in rows:
        print(
            f"{r['run_id']!s:<21} {r.get('started_at', '-')!s:<25} {r.get('app') or '-'!s:<14} "
            f"{r.get('sites', '-')!s:>5} {r['status']!s:<10} {_seconds(r.get('wall_seconds')):>8}  "
            f"{r.get('result', '-')}"
        )
    return 0


def main(argv: list[str]) -> int:
    return run_command(_list, argv)
