"""A repeated run on one project at 3, 30 and 100 sites: what the first run costs, and each
repetition after it (`python -m runner --demo --sites N --repeat R --json --no-track`).

Orchestration overhead is a run's wall time not spent between the project running and its
end (the app), as metrics.json counts it; `elapsed` adds what a run costs around that (the
preflight's logins and checks, writing the outputs). The first run starts every controller
(a process per site) and makes the project and a token per participant, paced by the
coordinator's 3 requests/s; a repetition finds the controllers up and the participants
members, so it is bounded by the platform's own steps and the website's polls. Tracking is
off: the MLflow record is its own cost (MLflow's import and the store).

FEDSTACK_BENCH_REPEAT_SIZES=3,30 narrows the sizes; FEDSTACK_BENCH_REPEATS sets R (default 3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from runner.outputs.metrics import METRICS_FILE

SIZES = (3, 30, 100)
REPEATS = 3
#: the whole series of one size; one that has not ended by then is reported as such
SERIES_DEADLINE = 1800.0
TARGET_SECONDS = 3.0


def run_series(sites: int, repeats: int, outdir: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "runner", "--demo", "--sites", str(sites)]
    cmd += ["--repeat", str(repeats), "--json", "--no-track", "--outdir", str(outdir)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=SERIES_DEADLINE, check=False
        )
    except subprocess.TimeoutExpired:
        return {"sites": sites, "error": f"did not finish within {SERIES_DEADLINE:.0f} s"}
    try:
        summary = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"sites": sites, "error": f"exit {proc.returncode}: {tail}"}
    rows = []
    for rep in summary.get("repetitions", []):
        if "run_dir" not in rep:
            rows.append({"repetition": rep.get("repetition"), "error": rep.get("error")})
            continue
        metrics = json.loads((Path(rep["run_dir"]) / METRICS_FILE).read_text())
        coordinator = metrics["sites"][0]["fc_user"]
        rows.append(
            {
                "repetition": rep["repetition"],
                "status": rep["status"],
                "elapsed": rep["elapsed_seconds"],
                "counters": metrics["counters"],
                "requests": metrics["requests"]["total"],
                "coordinator_requests": metrics["requests"]["by_user"].get(coordinator, 0),
            }
        )
    return {"sites": sites, "rows": rows, "stopped": summary.get("stopped")}


def print_table(results: list[dict[str, Any]]) -> None:
    print("## a repeated run on one project (`--demo --repeat`), local sites")
    print()
    print(
        "| sites | run | status | wall s | orchestration s | app s | elapsed s "
        "| requests | coordinator requests |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for result in results:
        if "error" in result:
            print(f"| {result['sites']} | - | failed: {result['error']} | | | | | | |")
            continue
        for r in result["rows"]:
            if "error" in r:
                print(f"| {result['sites']} | {r['repetition']} | failed: {r['error']} |||||||")
                continue
            c = r["counters"]
            print(
                f"| {result['sites']} | {r['repetition']} | {r['status']} "
                f"| {c.get('wall_seconds', float('nan')):.2f} "
                f"| {c.get('orchestration_seconds', float('nan')):.2f} "
                f"| {c.get('app_seconds', float('nan')):.2f} | {r['elapsed']:.2f} "
                f"| {r['requests']} | {r['coordinator_requests']} |"
            )
        if result.get("stopped"):
            print(f"| {result['sites']} | | {result['stopped']} |||||||")
    print()
    print(
        f"run 1 makes the project, a token per participant and starts every controller; runs\n"
        f"2.. reuse all three (target: a repetition's orchestration under {TARGET_SECONDS:g} s\n"
        "at 100 sites). elapsed: the run from its preflight to its written outputs.\n"
    )


def main() -> bool:
    """Run and print the series; True when every size completed every repetition."""
    sizes: tuple[int, ...] = SIZES
    if os.environ.get("FEDSTACK_BENCH_REPEAT_SIZES"):
        sizes = tuple(int(s) for s in os.environ["FEDSTACK_BENCH_REPEAT_SIZES"].split(","))
    repeats = int(os.environ.get("FEDSTACK_BENCH_REPEATS", REPEATS))
    results = []
    with tempfile.TemporaryDirectory(prefix="fedstack-bench-repeat-") as tmp:
        for n in sizes:
            print(f"running {n} sites, {repeats} times on one project ...", file=sys.stderr)
            results.append(run_series(n, repeats, Path(tmp) / f"n{n}"))
    print_table(results)
    return all(
        "error" not in r and all(row.get("status") == "completed" for row in r["rows"])
        for r in results
    )


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
