"""`comparison.csv`: every compared quantity of the sweeps, federated against centralized.

One row per quantity (name, federated, centralized, abs_difference), named
`app/split/n<sites>/r<repeat>/<quantity>`. The regression's coefficients must agree within
the config's tolerance (the sums of X^T X equal the pooled one); the job fails when they do
not, so `make study` cannot pass on a wrong answer. The mean app averages the sites' means
unweighted, so on unequal shares it differs from the pooled mean: that row says by how much.
"""

import csv
import json
from pathlib import Path
from typing import Any

REGRESSION_APP = "linear-regression"
FIELDS = ("name", "federated", "centralized", "abs_difference")


def quantity(name: str) -> str:
    return "mean" if name == "output" else name.removeprefix("coefficients.")


def rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    cells = {c["cell"]: c for c in summary["cells"]}
    found = []
    for comp in summary["comparisons"]:
        c = cells[comp["cell"]]
        name = f"{c['app']}/{c['split']}/n{c['sites']}/r{c['repeat']}/{quantity(comp['name'])}"
        found.append({"name": name, **{k: comp[k] for k in FIELDS[1:]}, "app": c["app"]})
    return found


def check(summaries: list[dict[str, Any]], found: list[dict[str, Any]], tolerance: float) -> None:
    """Every cell completed, every regression cell compared, and within the tolerance."""
    for s in summaries:
        bad = [c["cell"] for c in s["cells"] if c["status"] != "completed"]
        if bad:
            raise SystemExit(f"study {s['study']}: cells not completed: {', '.join(bad)}")
    if not any(r["app"] == REGRESSION_APP for r in found):
        raise SystemExit("no regression cell was compared with its centralized twin")
    off = [r for r in found if r["app"] == REGRESSION_APP and r["abs_difference"] > tolerance]
    if off:
        worst = max(off, key=lambda r: r["abs_difference"])
        raise SystemExit(
            f"{len(off)} regression coefficients differ by more than {tolerance}: "
            f"{worst['name']} by {worst['abs_difference']}"
        )


def main() -> None:
    sm: Any = globals()["snakemake"]
    summaries = [json.loads(Path(p).read_text(encoding="utf-8")) for p in sm.input]
    found = [r for s in summaries for r in rows(s)]
    check(summaries, found, float(sm.params.tolerance))
    with Path(sm.output[0]).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        for r in found:
            writer.writerow(
                {
                    **r,
                    "federated": repr(r["federated"]),
                    "centralized": repr(r["centralized"]),
                    "abs_difference": repr(r["abs_difference"]),
                }
            )


main()
