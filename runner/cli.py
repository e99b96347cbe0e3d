"""`python -m runner`: argv to runner.api, and the outcome to one line and an exit code.

A real run and the demo go through `runner.api.execute`, so the demo proves the code path a
researcher relies on. Every failure the user can act on is a `RunnerError`: one line on stderr
and its kind's exit code; Ctrl-C stops cleanly, keeps the checkpoint and says how to resume.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn, TextIO

from fcapi import DEFAULT_WEBSITE_URL
from fcapi.errors import one_line
from runner.api import Outcome
from runner.commands import command
from runner.demo import DEFAULT_OUTDIR, engine_app_dir, run_demo
from runner.engine.repeat import execute_series, series_lines
from runner.errors import EXIT_INTERRUPTED, BadInput, RunInterrupted, RunnerError
from runner.outputs.events import STDOUT, open_events
from runner.outputs.writers.mlflow_tracking import Tracking, choose_tracking
from runner.plan.credentials import passwords_for_run
from runner.plan.inventory_source import load_inventory
from runner.plan.workflow import load_workflow, workflow_path_from_config, writable_folder
from runner.stack.lifecycle import around_stack


class _Parser(argparse.ArgumentParser):
    """argparse's mistakes as the one line every other mistake is (no usage block)."""

    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{message} (see python -m runner --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m runner",
        description="Run a FeatureCloud workflow across the federation a Pulumi stack built.",
    )
    src = p.add_argument_group("where the sites come from")
    src.add_argument("--stack", help="Pulumi stack whose output 'inventory' lists the sites")
    src.add_argument("--inventory", type=Path, help="inventory JSON file (instead of a stack)")
    src.add_argument(
        "--project-dir",
        type=Path,
        default=Path.cwd(),
        help="folder of Pulumi.yaml (default: the current folder)",
    )
    src.add_argument(
        "--up", action="store_true", help="pulumi up the stack first (progress on stderr)"
    )
    src.add_argument(
        "--destroy",
        action="store_true",
        help="with --up: pulumi destroy the stack afterwards, whatever happened",
    )
    p.add_argument(
        "--workflow",
        type=Path,
        help="workflow TOML (default: the stack config's; with --demo: run it on the demo's sites)",
    )
    p.add_argument("--env-file", type=Path, help="USER=PASSWORD lines (default: ./.env if any)")
    p.add_argument(
        "--website-url",
        default=os.environ.get("FCAPI_WEBSITE_URL", DEFAULT_WEBSITE_URL),
        help="FeatureCloud website (default: %(default)s)",
    )
    p.add_argument("--outdir", type=Path, help="where run folders go (default: the workflow's)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue a run that stopped")
    p.add_argument(
        "--keep-controllers", action="store_true", help="leave the controllers running at the end"
    )
    p.add_argument(
        "--keep-project-running",
        action="store_true",
        help="leave a failing run's project running on the platform (default: stop it)",
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable summary only")
    p.add_argument(
        "--events",
        metavar="PATH|-",
        help="write every phase change, failure and result as JSON lines to PATH "
        "('-': stdout, and the summary goes to stderr)",
    )
    add_series_flags(p)
    add_demo_arguments(p)
    return p


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    demo = p.add_argument_group("the embedded demo")
    demo.add_argument(
        "--demo",
        action="store_true",
        help="emulated FeatureCloud and local sites on this machine, mean app",
    )
    demo.add_argument("--sites", type=int, default=3, help="demo sites (default: 3)")
    demo.add_argument(
        "--app-engine",
        action="store_true",
        help="run fedstack's mean app on FeatureCloud's engine (apps/mean) as app processes",
    )
    demo.add_argument(
        "--app-dir",
        type=Path,
        metavar="DIR",
        help="run this mean-compatible app folder on FeatureCloud's engine as the mean app",
    )


def add_series_flags(p: argparse.ArgumentParser) -> None:
    """--repeat, and where MLflow records the runs."""
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run the workflow N times on one project, each run its own folder (default: 1)",
    )
    track = p.add_argument_group("tracking with MLflow (pip install 'fedstack[tracking]')")
    track.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking server or store (default: <outdir>/mlruns when MLflow is installed)",
    )
    track.add_argument("--no-track", action="store_true", help="record the run in no MLflow store")


def stack_workflow(stack: str, project_dir: Path) -> Path | None:
    """The workflow the stack config names (`fedstack:workflow` in Pulumi.<stack>.yaml).

    PyYAML comes with the `infra` extra, so it is imported only when there is a file to read.
    """
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return None
    try:
        import yaml
    except ImportError:
        raise BadInput(
            f"reading the workflow from {path} needs PyYAML (pip install 'fedstack[infra]'); "
            "or give --workflow FILE"
        ) from None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return workflow_path_from_config(data.get("config") or {}, project_dir)


def warn_untracked(summary: dict[str, Any]) -> None:
    """A run MLflow did not take: one line on stderr (the run's folder is complete)."""
    for run in summary.get("repetitions", [summary]):
        tracked = run.get("tracking")
        if isinstance(tracked, dict) and tracked.get("error"):
            print(
                f"runner: warning: run {run.get('run_id')} not tracked at {tracked['uri']}: "
                f"{tracked['error']}",
                file=sys.stderr,
            )


def summary_stream(args: argparse.Namespace) -> TextIO:
    """stdout, unless the event stream has it: then stderr, so stdout stays JSON lines."""
    return sys.stderr if getattr(args, "events", None) == STDOUT else sys.stdout


def print_outcome(outcome: Outcome, json_output: bool, out: TextIO | None = None) -> None:
    warn_untracked(outcome.summary)
    out = out or sys.stdout
    if json_output:
        print(json.dumps(outcome.summary, indent=2, sort_keys=True), file=out)
        return
    s = outcome.summary
    if "repetitions" in s:
        print("\n".join(series_lines(s)), file=out)
        return
    status = s.get("status")
    print(f"run {s.get('run_id')}: {status}; project {s.get('project_id')}", file=out)
    failures = s.get("failures")
    if isinstance(failures, dict):
        for site, why in failures.items():
            print(f"  {site}: {why}", file=out)
    print(f"report: {s.get('report')}", file=out)


async def run_main(args: argparse.Namespace) -> int:
    check_repeat(args)
    if args.stack is None and args.inventory is None:
        raise BadInput("give --stack NAME (a Pulumi stack) or --inventory FILE")
    inventory = await asyncio.to_thread(
        load_inventory,
        stack=args.stack,
        inventory_file=args.inventory,
        work_dir=args.project_dir,
    )
    workflow_file = args.workflow
    if workflow_file is None and args.stack is not None:
        workflow_file = stack_workflow(args.stack, args.project_dir)
    if workflow_file is None:
        raise BadInput(
            "no workflow: give --workflow FILE or set fedstack:workflow in the stack config"
        )
    workflow = load_workflow(workflow_file, inventory)
    if args.outdir is not None:
        outdir = writable_folder(args.outdir, Path.cwd(), "--outdir")
        workflow = workflow.model_copy(update={"outdir": outdir.resolve()})
    passwords = passwords_for_run(inventory, env_file=args.env_file)
    with open_events(args.events) as events:
        outcome = await execute_series(
            args.repeat,
            inventory,
            workflow,
            passwords,
            website_url=args.website_url,
            resume=args.resume,
            keep_controllers=args.keep_controllers,
            keep_project_running=args.keep_project_running,
            json_output=args.json,
            tracking=tracking_of(args, workflow.outdir),
            events=events,
        )
    print_outcome(outcome, args.json, summary_stream(args))
    return outcome.code


def check_repeat(args: argparse.Namespace) -> None:
    if args.repeat < 1:
        raise BadInput(f"--repeat must be at least 1, got {args.repeat}")
    if args.resume is not None and args.repeat != 1:
        raise BadInput("--resume continues one run: give it without --repeat")


def tracking_of(args: argparse.Namespace, outdir: Path) -> Tracking | None:
    """The run's MLflow tracking; a line on stderr when it is off though nobody asked."""
    tracking, note = choose_tracking(outdir, args.tracking_uri, args.no_track)
    if note:
        print(note, file=sys.stderr)
    return tracking


def resume_command(argv: list[str] | None, stop: RunInterrupted) -> str:
    """The command line that continues an interrupted run: the same one, plus --resume."""
    words = list(sys.argv[1:] if argv is None else argv)
    if "--resume" in words:
        i = words.index("--resume")
        del words[i : i + 2]
    words = [w for w in words if not w.startswith("--resume=")]
    return " ".join(["python -m runner", *map(shlex.quote, words), "--resume", stop.run_id])


async def demo_main(args: argparse.Namespace) -> int:
    """`--demo`: the embedded federation; says the mean the sites agree on, or that they do not."""
    check_repeat(args)
    outdir = args.outdir if args.outdir is not None else DEFAULT_OUTDIR
    with open_events(args.events) as events:
        outcome, means = await run_demo(
            args.sites,
            outdir,
            json_output=args.json,
            keep_sites=args.keep_controllers,
            app_dir=engine_app_dir(args.app_engine, args.app_dir),
            workflow_file=args.workflow,
            repeat=args.repeat,
            tracking=tracking_of(args, outdir.resolve()),
            events=events,
        )
    out = summary_stream(args)
    if args.json:
        outcome.summary["means" if args.workflow is None else "last_steps"] = means
        print_outcome(outcome, True, out)
        return outcome.code
    print_outcome(outcome, False, out)
    values = sorted(set(means.values()))
    outcomes = outcome.summary.get("sites")
    sites = len(outcomes) if args.workflow and isinstance(outcomes, dict) else args.sites
    if len(values) == 1 and len(means) == sites and args.workflow is not None:
        print(
            f"every one of the {sites} sites has the workflow's last result: {values[0]}", file=out
        )
    elif len(values) == 1 and len(means) == sites:
        said = f"mean of the {args.sites} sites, computed by the emulated federation: {values[0]}"
        print(said, file=out)
    else:
        print(f"the sites disagree or some have no result: {means}", file=out)
        return outcome.code or 1
    return outcome.code


def _one_line_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    print(f"runner: warning: {one_line(str(message))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _one_line_warning
    words = list(sys.argv[1:] if argv is None else argv)
    sub = command(words[0]) if words else None
    if sub is not None:
        return sub(words[1:])
    try:
        args = build_parser().parse_args(argv)
    except BadInput as exc:
        print(f"runner: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        if args.demo:
            return asyncio.run(demo_main(args))
        return asyncio.run(
            around_stack(
                args.stack,
                args.project_dir,
                up=args.up,
                destroy=args.destroy,
                inventory=args.inventory,
                run=lambda: run_main(args),
            )
        )
    except RunInterrupted as stop:
        if args.demo:
            print("runner: demo interrupted; its controllers were stopped", file=sys.stderr)
        else:
            print(
                f"runner: interrupted; run {stop.run_id} is saved in {stop.run_dir} and its "
                f"controllers are left running. Continue it with: {resume_command(argv, stop)}",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("runner: interrupted before the run started; nothing to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RunnerError as exc:
        print(f"runner: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
