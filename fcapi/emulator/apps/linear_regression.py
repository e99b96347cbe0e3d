"""`linear-regression`: federated ordinary least squares by aggregated sufficient statistics.

Each site sends X^T X and X^T y of its rows (never the rows); the coordinator sums them in
the order they reached it (its own first), as the engine app's `aggregate_data` does, solves
the normal equations and broadcasts the coefficients. Because
sum_k X_k^T X_k = X^T X of the pooled data, the result equals the centralized fit.
numpy is imported inside the functions so a controller that never runs this app does not
pay for it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from fcapi.emulator.apps.base import GATHER, FederatedApp, Setup
from fcapi.emulator.apps.config import app_config

DEFAULTS: dict[str, Any] = {
    "input_name": "data.csv",
    "target": "y",
    "output_name": "coefficients.csv",
    "intercept": True,
}


def read_table(path: Path) -> tuple[list[str], list[list[float]]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [r for r in rows[1:] if r]
    return header, [[float(c) for c in r] for r in body]


def design(
    header: list[str], rows: list[list[float]], target: str, intercept: bool
) -> tuple[list[str], Any, Any]:
    """Feature names, X (with a leading column of ones when `intercept`) and y, each laid out
    in memory as the engine app's pandas arrays are (C order, y contiguous): numpy's products
    take another summation path on a strided vector, which shows in the last digit."""
    import numpy as np

    if target not in header:
        raise ValueError(f"target column {target!r} is not in the header {header}")
    t = header.index(target)
    data = np.asarray(rows, dtype=float).reshape(len(rows), len(header))
    names = [h for i, h in enumerate(header) if i != t]
    x = np.delete(data, t, axis=1)
    if intercept:
        x = np.hstack([np.ones((x.shape[0], 1)), x])
        names = ["intercept", *names]
    return names, x, np.ascontiguousarray(data[:, t])


def local_stats(x: Any, y: Any) -> dict[str, Any]:
    return {"xtx": (x.T @ x).tolist(), "xty": (x.T @ y).tolist(), "n": int(x.shape[0])}


def solve(stats: list[dict[str, Any]]) -> list[float]:
    """Coefficients from the statistics of every site, added up one by one in the given order
    (the engine's `aggregate_data`: the first piece, plus each next one)."""
    import numpy as np

    xtx = sum((np.asarray(s["xtx"]) for s in stats[1:]), np.asarray(stats[0]["xtx"]))
    xty = sum((np.asarray(s["xty"]) for s in stats[1:]), np.asarray(stats[0]["xty"]))
    coef: list[float] = np.linalg.solve(xtx, xty).tolist()
    return coef


class LinearRegressionApp(FederatedApp):
    app_id = 901
    slug = "linear-regression"
    name = "Linear Regression (emulated)"

    def work(self, setup: Setup) -> None:
        self._setup = setup
        self._cfg = app_config(setup.input_dir, "linear_regression", DEFAULTS)
        header, rows = read_table(setup.input_dir / self._cfg["input_name"])
        self._names, x, y = design(header, rows, self._cfg["target"], bool(self._cfg["intercept"]))
        #: every site's statistics, in the order they reached this app (its own first)
        self._stats: dict[str, dict[str, Any]] = {setup.id: local_stats(x, y)}
        if setup.coordinator:
            self._maybe_solve()
        else:
            self.send(json.dumps(self._stats[setup.id]).encode(), memo=GATHER)

    def receive(self, sender: str, memo: str, data: bytes) -> None:
        body = json.loads(data)
        if self._setup.coordinator:
            self._stats[sender] = body
            self._maybe_solve()
        else:
            self._write(body["coefficients"])

    def _maybe_solve(self) -> None:
        clients = self._setup.clients
        if not all(c in self._stats for c in clients):
            return
        coef = solve(list(self._stats.values()))
        if len(clients) > 1:
            self.send(json.dumps({"names": self._names, "coefficients": coef}).encode())
        self._write(coef)

    def _write(self, coef: list[float]) -> None:
        out = self._setup.output_dir
        lines = [
            "name,coefficient",
            *(f"{n},{c!r}" for n, c in zip(self._names, coef, strict=True)),
        ]
        (out / self._cfg["output_name"]).write_text("\n".join(lines) + "\n")
        n_total = sum(s["n"] for s in self._stats.values()) if self._setup.coordinator else None
        summary = {"names": self._names, "coefficients": coef, "n": n_total}
        (out / "model.json").write_text(json.dumps(summary))
        self.finish("fitted")


APP = LinearRegressionApp
