"""`make bench`: the figures fedstack promises, printed as tables.

- The runner at 3, 10, 30 and 100 local sites against the emulator: wall time, orchestration
  overhead (wall time not spent in the app), website requests (total, per site beyond status
  polls, highest rate of any user) and the runner's peak memory. Each size runs in its own
  process (`python -m runner --demo --json`), so peak memory is that run's alone.
- The website requests one 3-site mean workflow makes, by endpoint.
- The Pulumi program under mocks at 3 and 50 sites (bench.infra_mock), when present.

Sizes can be narrowed with FEDSTACK_BENCH_SIZES=3,10 for a quick look.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runner.outputs.metrics import METRICS_FILE

SIZES = (3, 10, 30, 100)
#: a size that has not finished by then is reported as such, not waited for forever
RUN_DEADLINE = 900.0
POLL_ENDPOINT = "GET /api/projects/{id}/"


def run_size(sites: int, outdir: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "runner",
        "--demo",
        "--sites",
        str(sites),
        "--json",
        "--outdir",
        str(outdir),
    ]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=RUN_DEADLINE, check=False
        )
    except subprocess.TimeoutExpired:
        return {"sites": sites, "error": f"did not finish within {RUN_DEADLINE:.0f} s"}
    elapsed = time.monotonic() - started
    try:
        summary = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"sites": sites, "error": f"exit {proc.returncode}: {tail}"}
    metrics = json.loads((Path(summary["run_dir"]) / METRICS_FILE).read_text())
    return {"sites": sites, "elapsed": elapsed, "summary": summary, "metrics": metrics}


def row(result: dict[str, Any]) -> str:
    n = result["sites"]
    if "error" in result:
        return f"| {n:>5} | {'failed: ' + result['error']:<80} |"
    m = result["metrics"]
    counters = m["counters"]
    requests = m["requests"]
    polls = requests["by_endpoint"].get(POLL_ENDPOINT, 0)
    per_site = (requests["total"] - polls) / n
    peak_mib = (m["resources"] or {}).get("peak_rss_kib", 0) / 1024
    over = round(requests.get("over_limit", 0.0), 2)  # + 0.0 below: no "-0.00"
    status = m["status"]
    return (
        f"| {n:>5} | {status:<9} | {counters.get('wall_seconds', 0):>8.2f} "
        f"| {counters.get('orchestration_seconds', float('nan')):>13.2f} "
        f"| {counters.get('app_seconds', float('nan')):>6.2f} "
        f"| {requests['total']:>8} | {per_site:>13.2f} | {polls:>5} "
        f"| {requests['max_rate']:>12.2f} | {over + 0.0:>10.2f} "
        f"| {peak_mib:>13.1f} |"
    )


def print_runner_table(results: list[dict[str, Any]]) -> None:
    print("## runner against the emulator, local sites")
    print()
    print(
        "| sites | status    |   wall s | orchestration s | app s | requests | "
        "per site (-polls) | polls | max req/s/user | over limit | runner peak MiB |"
    )
    print(
        "|------:|-----------|---------:|--------------:|------:|---------:|"
        "--------------:|------:|-------------:|-----------:|--------------:|"
    )
    for result in results:
        print(row(result))
    print()


def print_legend() -> None:
    print(
        "max req/s/user: most requests of one user inside any 1 s window (a burst of 3 rides\n"
        "on 3/s, so up to 5 is polite); over limit: most requests of any user beyond the\n"
        "token bucket (3/s, burst 3) over any interval, <= 0 means never over the limit.\n"
        "orchestration s: wall time not spent between the project running and ending.\n"
    )


def print_endpoint_table(result: dict[str, Any]) -> None:
    if "error" in result:
        return
    by_endpoint = result["metrics"]["requests"]["by_endpoint"]
    print(f"## website requests of one {result['sites']}-site mean workflow, by endpoint")
    print()
    print("| endpoint | requests |")
    print("|---|---:|")
    for endpoint, count in sorted(by_endpoint.items()):
        print(f"| `{endpoint}` | {count} |")
    print(f"| total | {sum(by_endpoint.values())} |")
    print()


def main() -> int:
    sizes: tuple[int, ...] = SIZES
    if os.environ.get("FEDSTACK_BENCH_SIZES"):
        sizes = tuple(int(s) for s in os.environ["FEDSTACK_BENCH_SIZES"].split(","))
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fedstack-bench-") as tmp:
        for n in sizes:
            print(f"running {n} sites ...", file=sys.stderr, flush=True)
            results.append(run_size(n, Path(tmp) / f"n{n}"))
    print_runner_table(results)
    print_legend()
    smallest = min(results, key=lambda r: r["sites"])
    print_endpoint_table(smallest)
    try:
        from bench import infra_mock
    except ImportError:
        pass
    else:
        infra_mock.main()
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
