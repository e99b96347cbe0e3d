"""Federated standardisation on FeatureCloud's engine: every column to mean 0, variance 1.

Each site sends the count, sum and sum of squares of its columns; the engine's `aggregate_data`
adds them up, the coordinator turns them into the pooled mean and (population) standard
deviation and broadcasts them, and every site writes its table standardised with them, so that
the next step of a workflow (a regression) works on features standardised as the pooled data
would be. Columns named in `exclude` pass through unchanged. config.yml is copied to the output
for the next step. A last `DONE` round lets the coordinator finish last.
"""

# mypy: disable-error-code="import-not-found, import-untyped", allow-subclassing-any
# (the engine and pandas live in the app's own venv, not in fedstack's)
import contextlib
import shutil
from typing import Any

import numpy as np
import pandas as pd
import yaml
from FeatureCloud.app.engine.app import AppState, Role, app_state

INPUT_DIR = "/mnt/input"
OUTPUT_DIR = "/mnt/output"
DEFAULTS: dict[str, Any] = {"input_name": "data.csv", "exclude": ["y"], "output_name": "data.csv"}


def read_config() -> dict[str, Any]:
    try:
        with open(f"{INPUT_DIR}/config.yml") as f:
            loaded = yaml.safe_load(f) or {}
    except FileNotFoundError:
        return dict(DEFAULTS)
    return {**DEFAULTS, **(loaded.get("standardize") or {})}


@app_state("initial", Role.BOTH)
class Initial(AppState):
    def register(self) -> None:
        self.register_transition("pool", Role.COORDINATOR)
        self.register_transition("wait", Role.PARTICIPANT)

    def run(self) -> str:
        config = read_config()
        table = pd.read_csv(f"{INPUT_DIR}/{config['input_name']}")
        columns = [str(c) for c in table.columns if c not in set(config["exclude"])]
        x = table[columns].to_numpy(dtype=float)
        self.store("config", config)
        self.store("table", table)
        self.store("columns", columns)
        counts = np.full(len(columns), float(x.shape[0]))
        self.send_data_to_coordinator(np.vstack([counts, x.sum(axis=0), (x * x).sum(axis=0)]))
        return "pool" if self.is_coordinator else "wait"


@app_state("pool", Role.COORDINATOR)
class Pool(AppState):
    def register(self) -> None:
        self.register_transition("write", Role.COORDINATOR)

    def run(self) -> str:
        n, total, squares = self.aggregate_data()
        mean = total / n
        scale = np.sqrt(squares / n - mean * mean)
        self.store("scaling", [mean.tolist(), scale.tolist()])
        self.broadcast_data(self.load("scaling"), send_to_self=False)
        return "write"


@app_state("wait", Role.PARTICIPANT)
class Wait(AppState):
    def register(self) -> None:
        self.register_transition("write", Role.PARTICIPANT)

    def run(self) -> str:
        self.store("scaling", self.await_data())
        return "write"


@app_state("write", Role.BOTH)
class Write(AppState):
    def register(self) -> None:
        self.register_transition("finishing", Role.COORDINATOR)
        self.register_transition("terminal", Role.PARTICIPANT)

    def run(self) -> str:
        table, columns = self.load("table").copy(), self.load("columns")
        mean, scale = (np.asarray(v) for v in self.load("scaling"))
        table[columns] = (table[columns].to_numpy(dtype=float) - mean) / scale
        lines = [",".join(str(c) for c in table.columns)]
        lines += [",".join(repr(float(v)) for v in row) for row in table.to_numpy(dtype=float)]
        with open(f"{OUTPUT_DIR}/{self.load('config')['output_name']}", "w") as f:
            f.write("\n".join(lines) + "\n")
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(f"{INPUT_DIR}/config.yml", f"{OUTPUT_DIR}/config.yml")
        self.send_data_to_coordinator("DONE")
        return "finishing" if self.is_coordinator else "terminal"


@app_state("finishing", Role.COORDINATOR)
class Finishing(AppState):
    def register(self) -> None:
        self.register_transition("terminal", Role.COORDINATOR)

    def run(self) -> str:
        self.gather_data()
        return "terminal"
