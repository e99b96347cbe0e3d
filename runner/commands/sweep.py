"""`python -m runner sweep STUDY.toml [--json] [--outdir DIR]`: run a study's matrix of cells.

Every cell is a run through `runner.api.execute`; a second invocation skips finished cells,
retries failed ones and resumes interrupted ones (runner.sweep). Exit 0 when every cell
completed, else the exit code of the first cell that did not (10, 11, or 2), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import NoReturn

from fcapi.errors import one_line
from runner.errors import EXIT_INTERRUPTED, EXIT_SITES_FAILED, BadInput, RunnerError
from runner.outputs.writers.mlflow_tracking import choose_tracking
from runner.sweep.run import SweepInterrupted, SweepResult, sweep
from runner.sweep.study import load_study
from runner.sweep.summary import SUMMARY_JSON


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{message} (see python -m runner sweep --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m runner sweep", description="Run a study: a matrix of runs.")
    p.add_argument("study", type=Path, help="the study file (TOML)")
    p.add_argument("--outdir", type=Path, help="where <study>/ goes (default: the study's)")
    p.add_argument("--json", action="store_true", help="print the study's summary as JSON only")
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow server or store for every cell's run (default: <study>/mlruns)",
    )
    p.add_argument("--no-track", action="store_true", help="record the cells in no MLflow store")
    return p


def exit_code(result: SweepResult) -> int:
    for state in result.states.values():
        if state.status != "completed":
            return state.attempts[-1].code if state.attempts else EXIT_SITES_FAILED
    return 0


async def amain(args: argparse.Namespace) -> int:
    study = load_study(args.study, args.outdir)

    def echo(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    tracking, note = choose_tracking(study.folder, args.tracking_uri, args.no_track)
    if note:
        print(note, file=sys.stderr)
    result = await sweep(study, echo, tracking)
    if args.json:
        print((study.folder / SUMMARY_JSON).read_text(encoding="utf-8"), end="")
    else:
        done = sum(s.status == "completed" for s in result.states.values())
        print(
            f"study {study.name}: {done} of {len(result.cells)} cells completed "
            f"({len(result.skipped)} skipped as finished); page: {result.page}"
        )
    return exit_code(result)


def main(argv: list[str]) -> int:
    try:
        return asyncio.run(amain(build_parser().parse_args(argv)))
    except SweepInterrupted as stop:
        print(
            f"runner: sweep interrupted; its runs are saved in {stop.run_dir}; the same "
            "command resumes them",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("runner: sweep interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RunnerError as exc:
        print(f"runner: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
