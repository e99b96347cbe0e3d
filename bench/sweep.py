"""A 2 x 3 sweep's wall time: the mean app at 2 and 3 sites, three repeats each, on the demo.

The study runs as `python -m runner sweep --json` in its own process, so the figure includes
what a user waits for: the demo federation's making (accounts, sites), six cells one after
another, the summary and page. A second invocation, which must skip every cell, is timed too.
Run alone: `python -m bench.sweep`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STUDY = 'name = "bench"\napps = ["mean-app"]\nsites = [2, 3]\nrepeats = 3\ndeadline = "5m"\n'
#: the whole sweep must end by then, or it is reported as not finished
SWEEP_DEADLINE = 1800.0


def timed_sweep(study: Path) -> tuple[float, dict[str, Any] | str]:
    argv = [sys.executable, "-m", "runner", "sweep", str(study), "--json"]
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=SWEEP_DEADLINE)
    except subprocess.TimeoutExpired:
        return SWEEP_DEADLINE, f"did not finish within {SWEEP_DEADLINE:.0f} s"
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return elapsed, f"exit {proc.returncode}: {tail}"
    summary: dict[str, Any] = json.loads(proc.stdout)
    return elapsed, summary


def main() -> bool:
    with tempfile.TemporaryDirectory(prefix="fedstack-bench-sweep-") as tmp:
        study = Path(tmp) / "bench.toml"
        study.write_text(STUDY + f"outdir = {json.dumps(tmp)}\n", encoding="utf-8")
        print("running a 2 x 3 sweep ...", file=sys.stderr, flush=True)
        first, summary = timed_sweep(study)
        again, second = timed_sweep(study)
    print("## a 2 x 3 sweep (mean app, 2 and 3 sites, 3 repeats) on the demo")
    print()
    if isinstance(summary, str) or isinstance(second, str):
        print(f"failed: {summary if isinstance(summary, str) else second}")
        print()
        return False
    cells = summary["cells"]
    in_cells = sum(c["seconds"] or 0.0 for c in cells)
    print("| cells | wall s | in cells s | federation and start-up s | again (all skipped) s |")
    print("|------:|-------:|-----------:|--------------------------:|----------------------:|")
    print(f"| {len(cells)} | {first:.1f} | {in_cells:.1f} | {first - in_cells:.1f} | {again:.1f} |")
    print()
    return all(c["status"] == "completed" for c in cells) and all(
        c["status"] == "completed" for c in second["cells"]
    )


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
