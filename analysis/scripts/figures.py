"""The study's figures: the regression's coefficients federated against centralized, with their
differences, and the orchestration time per phase against the number of sites.
"""

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

REGRESSION_APP = "linear-regression"
COEF = "coefficients."


def coefficients(summaries: list[dict[str, Any]], out: Path) -> None:
    comps = [(s, c) for s in summaries for c in s["comparisons"] if c["name"].startswith(COEF)]
    cells = {c["cell"]: c for s in summaries for c in s["cells"]}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8))
    if comps:
        first = comps[0][1]["cell"]
        mine = [c for _, c in comps if c["cell"] == first]
        names = [c["name"].removeprefix(COEF) for c in mine]
        x = range(len(names))
        top.bar([i - 0.2 for i in x], [c["federated"] for c in mine], 0.4, label="federated")
        top.bar([i + 0.2 for i in x], [c["centralized"] for c in mine], 0.4, label="centralized")
        top.set_xticks(list(x), names, rotation=45)
        top.set_title(f"coefficients, {first}")
        top.legend()
        by_cell: dict[str, list[float]] = defaultdict(list)
        for _, c in comps:
            by_cell[c["cell"]].append(max(c["abs_difference"], 1e-18))
        for i, (_, diffs) in enumerate(sorted(by_cell.items())):
            bottom.scatter([i] * len(diffs), diffs, s=12)
        labels = [f"{cells[c]['split']} n{cells[c]['sites']}" for c in sorted(by_cell)]
        bottom.set_xticks(range(len(labels)), labels, rotation=30)
        bottom.set_yscale("log")
        bottom.axhline(1e-9, color="red", linestyle="--", label="1e-9")
        bottom.set_ylabel("|federated - centralized|")
        bottom.set_title("every coefficient of every cell (1e-18: equal)")
        bottom.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def phases(summaries: list[dict[str, Any]], out: Path) -> None:
    """Mean seconds per phase of the federated cells, by site count."""
    seconds: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in summaries:
        for c in s["cells"]:
            if c["mode"] != "federated" or c["status"] != "completed":
                continue
            for key, value in c.items():
                if key.startswith("phase.") and isinstance(value, int | float):
                    seconds[key.removeprefix("phase.")][int(c["sites"])].append(float(value))
    fig, ax = plt.subplots(figsize=(9, 5))
    tab20 = plt.get_cmap("tab20")  # more phases than the default cycle's 10 colours
    colours = [tab20(k) for k in range(20)]
    counts: set[int] = set()
    for i, (phase, by_sites) in enumerate(sorted(seconds.items())):
        xs = sorted(by_sites)
        counts.update(xs)
        means = [sum(by_sites[n]) / len(by_sites[n]) for n in xs]
        ax.plot(xs, means, marker="o", label=phase, color=colours[i % len(colours)])
    ax.set_xticks(sorted(counts))
    ax.set_xlabel("sites")
    ax.set_ylabel("seconds (mean over cells)")
    ax.set_title("orchestration time per phase")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    sm: Any = globals()["snakemake"]
    summaries = [json.loads(Path(p).read_text(encoding="utf-8")) for p in sm.input]
    coefficients(summaries, Path(sm.output.coefficients))
    phases(summaries, Path(sm.output.phases))


main()
