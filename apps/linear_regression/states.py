"""Federated ordinary least squares on FeatureCloud's engine, by summed sufficient statistics.

Each site sends [X^T X | X^T y] of its own rows (never the rows) to the coordinator, which the
engine's `aggregate_data` adds up; since the sum over sites of X_k^T X_k is X^T X of the pooled
data, solving the normal equations gives the centralized fit. The coordinator broadcasts the
coefficients; every site writes them (`name,coefficient` lines and model.json), then a `DONE`
round lets the coordinator finish last. Values travel pickled, as the engine's do: they come
only from the federation's own apps.
"""

# mypy: disable-error-code="import-not-found, import-untyped", allow-subclassing-any
# (the engine and pandas live in the app's own venv, not in fedstack's)
import json
from typing import Any

import numpy as np
import pandas as pd
import yaml
from FeatureCloud.app.engine.app import AppState, Role, app_state

INPUT_DIR = "/mnt/input"
OUTPUT_DIR = "/mnt/output"
DEFAULTS = {
    "input_name": "data.csv",
    "target": "y",
    "output_name": "coefficients.csv",
    "intercept": True,
}


def read_config() -> dict[str, Any]:
    try:
        with open(f"{INPUT_DIR}/config.yml") as f:
            loaded = yaml.safe_load(f) or {}
    except FileNotFoundError:
        return dict(DEFAULTS)
    return {**DEFAULTS, **(loaded.get("linear_regression") or {})}


def design(table: Any, target: str, intercept: bool) -> tuple[list[str], Any, Any]:
    """Feature names, X (a leading column of ones with `intercept`) and y."""
    if target not in table.columns:
        raise KeyError(f"target column {target!r} is not among {list(table.columns)}")
    names = [str(c) for c in table.columns if c != target]
    x = table[names].to_numpy(dtype=float)
    if intercept:
        x = np.hstack([np.ones((x.shape[0], 1)), x])
        names = ["intercept", *names]
    return names, x, table[target].to_numpy(dtype=float)


@app_state("initial", Role.BOTH)
class Initial(AppState):
    def register(self) -> None:
        self.register_transition("solve", Role.COORDINATOR)
        self.register_transition("wait", Role.PARTICIPANT)

    def run(self) -> str:
        config = read_config()
        table = pd.read_csv(f"{INPUT_DIR}/{config['input_name']}")
        names, x, y = design(table, str(config["target"]), bool(config["intercept"]))
        self.store("config", config)
        self.store("names", names)
        self.send_data_to_coordinator(np.hstack([x.T @ x, (x.T @ y)[:, None]]))
        self.send_data_to_coordinator(x.shape[0], memo="ROWS")
        return "solve" if self.is_coordinator else "wait"


@app_state("solve", Role.COORDINATOR)
class Solve(AppState):
    def register(self) -> None:
        self.register_transition("write", Role.COORDINATOR)

    def run(self) -> str:
        stats = self.aggregate_data()
        rows = self.aggregate_data(memo="ROWS")
        coefficients = np.linalg.solve(stats[:, :-1], stats[:, -1]).tolist()
        self.store("model", {"coefficients": coefficients, "n": int(rows)})
        self.broadcast_data(coefficients, send_to_self=False)
        return "write"


@app_state("wait", Role.PARTICIPANT)
class Wait(AppState):
    def register(self) -> None:
        self.register_transition("write", Role.PARTICIPANT)

    def run(self) -> str:
        self.store("model", {"coefficients": self.await_data(), "n": None})
        return "write"


@app_state("write", Role.BOTH)
class Write(AppState):
    def register(self) -> None:
        self.register_transition("finishing", Role.COORDINATOR)
        self.register_transition("terminal", Role.PARTICIPANT)

    def run(self) -> str:
        names, model = self.load("names"), self.load("model")
        lines = ["name,coefficient"]
        lines += [f"{n},{c!r}" for n, c in zip(names, model["coefficients"], strict=True)]
        with open(f"{OUTPUT_DIR}/{self.load('config')['output_name']}", "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(f"{OUTPUT_DIR}/model.json", "w") as f:
            json.dump({"names": names, **model}, f)
        self.send_data_to_coordinator("DONE")
        return "finishing" if self.is_coordinator else "terminal"


@app_state("finishing", Role.COORDINATOR)
class Finishing(AppState):
    def register(self) -> None:
        self.register_transition("terminal", Role.COORDINATOR)

    def run(self) -> str:
        self.gather_data()
        return "terminal"
