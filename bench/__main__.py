"""`make bench`: the figures fedstack promises, printed as tables.

- The runner at 3, 10, 30 and 100 local sites against the emulator: wall time, orchestration
  overhead (wall time not spent in the app), website requests (total, per site beyond status
  polls, highest rate of any user) and the runner's peak memory. Each size runs in its own
  process (`python -m runner --demo --json`), so peak memory is that run's alone.
- The website requests one 3-site mean workflow makes, by endpoint.
- A 3-site run of the demo with the engine mean app (`--app-engine`, apps/mean) as app
  processes: its wall time, the peak memory of its app processes (summed, and the largest one)
  and the venv's build time, cold (as recorded when the cache built it) and warm.
- The Pulumi program under mocks at 3 and 50 sites (bench.infra_mock), when present.
- A repeated run on one project at 3, 30 and 100 sites (bench.repeat).
- A 2 x 3 sweep's wall time, and its second invocation's (bench.sweep).

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

from bench import sweep as bench_sweep
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


ENGINE_APP = Path(__file__).resolve().parents[1] / "apps" / "mean"


def app_rss_kib(folder: Path) -> dict[int, int]:
    """Resident memory of every process running from `folder` (an app's `main.py`), by pid."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") != str(folder):
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                found[int(entry.name)] = int(line.split()[1])
    return found


def run_engine(outdir: Path) -> dict[str, Any]:
    """The 3-site demo on the engine app, its app processes' memory sampled while it runs."""
    from fcapi.emulator.engine.venvs import build_seconds, ensure_venv

    ensure_venv(ENGINE_APP)  # builds it if this machine has not: that is the cold figure
    started = time.monotonic()
    venv = ensure_venv(ENGINE_APP)
    warm = time.monotonic() - started
    cmd = [sys.executable, "-m", "runner", "--demo", "--app-engine", "--json"]
    proc = subprocess.Popen(
        [*cmd, "--outdir", str(outdir)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    started = time.monotonic()
    peak_total = peak_one = 0
    while proc.poll() is None and time.monotonic() - started < RUN_DEADLINE:
        rss = app_rss_kib(ENGINE_APP)
        peak_total = max(peak_total, sum(rss.values()))
        peak_one = max([peak_one, *rss.values()])
        time.sleep(0.25)
    if proc.poll() is None:
        proc.kill()
    out, _ = proc.communicate()
    elapsed = time.monotonic() - started
    ok = proc.returncode == 0 and bool(out) and json.loads(out).get("status") == "completed"
    return {
        "ok": ok,
        "elapsed": elapsed,
        "peak_total_mib": peak_total / 1024,
        "peak_app_mib": peak_one / 1024,
        "venv_cold": build_seconds(venv),
        "venv_warm": warm,
    }


def print_engine_table(result: dict[str, Any]) -> None:
    print("## 3 sites with the engine mean app as processes (`--demo --app-engine`)")
    print()
    print("| wall s | app processes, peak MiB | largest app, MiB | venv cold s | venv warm ms |")
    print("|---:|---:|---:|---:|---:|")
    cold = result["venv_cold"]
    print(
        f"| {result['elapsed']:.1f}{'' if result['ok'] else ' (failed)'} "
        f"| {result['peak_total_mib']:.0f} | {result['peak_app_mib']:.0f} "
        f"| {'?' if cold is None else f'{cold:.1f}'} | {result['venv_warm'] * 1000:.1f} |"
    )
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
    with tempfile.TemporaryDirectory(prefix="fedstack-bench-engine-") as tmp:
        print("running 3 sites with the engine app ...", file=sys.stderr, flush=True)
        engine = run_engine(Path(tmp))
    print_engine_table(engine)
    try:
        from bench import infra_mock
    except ImportError:
        pass
    else:
        infra_mock.main()
    from bench import repeat

    repeated = repeat.main()
    swept = bench_sweep.main()
    ok = all("error" not in r for r in results) and engine["ok"] and repeated and swept
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
