"""`python -m runner`: read the inventory and the workflow, run it, write the outputs.

A real run and the demo go through `execute`, so the demo proves the code path a researcher
relies on. Every failure the user can act on is one line on stderr and a non-zero exit code;
Ctrl-C stops cleanly, keeps the checkpoint and says how to resume.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from fcapi import DEFAULT_WEBSITE_URL
from fcapi.errors import ExitCode
from fcapi.files import write_atomic
from fedinfra.inventory import Inventory
from runner.engine.checkpoint import (
    CheckpointError,
    inventory_digest,
    list_runs,
    new_run_id,
    new_state,
    resume_state,
)
from runner.engine.orchestrate import Orchestrator, RunOptions
from runner.outputs.progress import make_progress
from runner.outputs.writers import write_outputs
from runner.plan.credentials import MissingPasswords, passwords_for_run
from runner.plan.inventory_source import InventorySourceError, load_inventory
from runner.plan.workflow import Workflow, WorkflowError, load_workflow, workflow_path_from_config

#: exit codes beyond fcapi's: the run itself failed at one or more sites
EXIT_SITES_FAILED = 11
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Arguments that cannot work together; one line."""


class RunInterrupted(Exception):
    """Ctrl-C during a run: its state is saved and it can be resumed."""

    def __init__(self, run_id: str, run_dir: Path) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.run_dir = run_dir


@dataclass
class Outcome:
    code: int
    run_dir: Path
    summary: dict[str, object]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
    p.add_argument("--workflow", type=Path, help="workflow TOML (default: the stack config's)")
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
    p.add_argument("--json", action="store_true", help="print a machine-readable summary only")
    demo = p.add_argument_group("the embedded demo")
    demo.add_argument(
        "--demo",
        action="store_true",
        help="emulated FeatureCloud and local sites on this machine, mean app",
    )
    demo.add_argument("--sites", type=int, default=3, help="demo sites (default: 3)")
    return p


def stack_workflow(stack: str, project_dir: Path) -> Path | None:
    """The workflow the stack config names (`fedstack:workflow` in Pulumi.<stack>.yaml)."""
    import yaml

    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return workflow_path_from_config(data.get("config") or {}, project_dir)


async def execute(
    inventory: Inventory,
    workflow: Workflow,
    passwords: dict[str, SecretStr],
    *,
    website_url: str,
    resume: str | None = None,
    keep_controllers: bool = False,
    json_output: bool = False,
    rate: float = 3.0,
) -> Outcome:
    """Run (or resume) the workflow and write every output; the exit code says how it went."""
    inv_digest = inventory_digest(inventory)
    if resume is not None:
        state = resume_state(
            workflow.outdir,
            resume,
            workflow_digest=workflow.digest,
            inventory_digest=inv_digest,
        )
    else:
        state = new_state(
            new_run_id(),
            workflow_digest=workflow.digest,
            inventory_digest=inv_digest,
            sites=[s.name for s in inventory.sites],
            app=workflow.app,
            project_id=workflow.project_id if workflow.project_id else None,
        )
        if workflow.project_id is not None:
            state.project_id = None  # a reused project is (re)checked by the run itself
    run_dir = workflow.outdir / state.run_id
    await asyncio.to_thread(keep_inputs, run_dir, inventory, workflow)
    progress = make_progress(sys.stderr, json_mode=json_output)
    progress.start(state.run_id, [s.name for s in inventory.sites], run_dir)
    orchestrator = Orchestrator(
        inventory,
        workflow,
        passwords,
        state,
        RunOptions(website_url=website_url, keep_controllers=keep_controllers, rate=rate),
        progress,
    )
    try:
        result = await orchestrator.run()
    except asyncio.CancelledError:
        raise RunInterrupted(state.run_id, run_dir) from None
    finally:
        progress.close()
    summary = await asyncio.to_thread(write_outputs, result, inventory, workflow, run_dir)
    code = ExitCode.OK if result.ok else EXIT_SITES_FAILED
    if result.project is not None and result.project.status in ("error", "failed"):
        code = ExitCode.PROJECT_FAILED
    return Outcome(code=int(code), run_dir=run_dir, summary=summary)


def keep_inputs(run_dir: Path, inventory: Inventory, workflow: Workflow) -> None:
    """The workflow file and the inventory (secrets masked) the run used, beside its results.

    A result is only as trustworthy as the record of what produced it; the workflow file may
    change or vanish after the run.
    """
    inputs = run_dir / "inputs"
    write_atomic(inputs / "workflow.toml", workflow.source.read_bytes())
    inventory_text = json.dumps(inventory.to_json_dict(reveal_secrets=False), indent=2)
    write_atomic(inputs / "inventory.json", inventory_text + "\n")


def print_outcome(outcome: Outcome, json_output: bool) -> None:
    if json_output:
        print(json.dumps(outcome.summary, indent=2, sort_keys=True))
        return
    s = outcome.summary
    status = s.get("status")
    print(f"run {s.get('run_id')}: {status}; project {s.get('project_id')}")
    failures = s.get("failures")
    if isinstance(failures, dict):
        for site, why in failures.items():
            print(f"  {site}: {why}")
    print(f"report: {outcome.run_dir / 'report.html'}")


async def run_main(args: argparse.Namespace) -> int:
    if args.stack is None and args.inventory is None:
        raise UsageError("give --stack NAME (a Pulumi stack) or --inventory FILE")
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
        raise UsageError(
            "no workflow: give --workflow FILE or set fedstack:workflow in the stack config"
        )
    workflow = load_workflow(workflow_file, inventory)
    if args.outdir is not None:
        workflow = workflow.model_copy(update={"outdir": args.outdir.resolve()})
    passwords = passwords_for_run(inventory, env_file=args.env_file)
    outcome = await execute(
        inventory,
        workflow,
        passwords,
        website_url=args.website_url,
        resume=args.resume,
        keep_controllers=args.keep_controllers,
        json_output=args.json,
    )
    print_outcome(outcome, args.json)
    return outcome.code


def resume_command(argv: list[str] | None, stop: RunInterrupted) -> str:
    """The command line that continues an interrupted run: the same one, plus --resume."""
    words = list(sys.argv[1:] if argv is None else argv)
    if "--resume" in words:
        i = words.index("--resume")
        del words[i : i + 2]
    words = [w for w in words if not w.startswith("--resume=")]
    return " ".join(["python -m runner", *map(shlex.quote, words), "--resume", stop.run_id])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.demo:
            from runner.demo import demo_main

            return asyncio.run(demo_main(args))
        return asyncio.run(run_main(args))
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
    except (
        UsageError,
        InventorySourceError,
        WorkflowError,
        MissingPasswords,
        CheckpointError,
    ) as exc:
        print(f"runner: {exc}", file=sys.stderr)
        return int(ExitCode.USAGE)


__all__ = ["execute", "list_runs", "main"]
