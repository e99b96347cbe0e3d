"""`mean-app` (id 66) exactly as FeatureCloud/fc-mean-template computes it.

Each site: local mean = sum of all cells of its header-less CSV / number of columns.
Participants send it to the coordinator, which averages all local means (its own included,
unweighted, with numpy's sum in the order the means reached it, as the engine app gathers
them) and broadcasts the result; every site writes `str(global_mean)` to its output file and copies
config.yml. Floats travel as JSON, whose repr round-trips exactly, so the check values come out
to the last digit.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from fcapi.emulator.apps.base import GATHER, FederatedApp, Setup
from fcapi.emulator.apps.config import app_config

DEFAULTS = {"input_name": "data.csv", "output_name": "output.csv"}


def local_mean(text: str) -> float:
    """(sum of all cells) / (number of columns), cells summed column by column as pandas does."""
    rows = [[float(c) for c in row] for row in csv.reader(text.splitlines()) if row]
    if not rows:
        raise ValueError("the input CSV is empty")
    n_cols = len(rows[0])
    column_sums = [sum(row[j] for row in rows) for j in range(n_cols)]
    total = 0.0
    for s in column_sums:
        total += s
    return total / n_cols


def global_mean(means: list[float]) -> float:
    """Unweighted mean of the local means as the engine app computes it: `np.sum` (pairwise
    from 8 values on, so not Python's `sum`) divided by the count, in the given order: the
    order the means reached the coordinator, its own first once its local work is done."""
    import numpy as np  # lazily: only the coordinator of a run needs it

    return float(np.sum(np.asarray(means, dtype=float)) / len(means))


class MeanApp(FederatedApp):
    app_id = 66
    slug = "mean-app"
    name = "Mean"

    def work(self, setup: Setup) -> None:
        self._setup = setup
        self._cfg = app_config(setup.input_dir, "fc_mean", DEFAULTS)
        self._local = local_mean((setup.input_dir / self._cfg["input_name"]).read_text())
        #: the local means by sender, in the order they reached this app (its own first)
        self._received: dict[str, float] = {setup.id: self._local}
        if setup.coordinator:
            self._maybe_aggregate()
        else:
            self.send(json.dumps(self._local).encode(), memo=GATHER)

    def receive(self, sender: str, memo: str, data: bytes) -> None:
        value = float(json.loads(data))
        if self._setup.coordinator:
            self._received[sender] = value
            self._maybe_aggregate()
        else:
            self._write(value)

    def _maybe_aggregate(self) -> None:
        clients = self._setup.clients
        if not all(c in self._received for c in clients):
            return
        result = global_mean(list(self._received.values()))
        if len(clients) > 1:
            self.send(json.dumps(result).encode())
        self._write(result)

    def _write(self, result: float) -> None:
        out: Path = self._setup.output_dir
        with (out / self._cfg["output_name"]).open("a") as f:
            f.write(str(result))
        cfg = self._setup.input_dir / "config.yml"
        if cfg.exists():
            shutil.copy(cfg, out / "config.yml")
        self.finish(f"global mean {result}")


APP = MeanApp
