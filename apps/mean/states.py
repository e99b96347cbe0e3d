"""fedstack's mean app on FeatureCloud's engine: the public template's arithmetic and rounds.

Each site's local mean is the sum of every cell of its header-less CSV divided by the number of
columns; the coordinator sums the gathered local means with `np.sum` (in gather order) and
divides by their count, broadcasts the result, and every site appends `str(mean)` to its output
file. A last round (`DONE` to the coordinator) lets the coordinator finish after everyone
wrote. Values travel jsonpickled, as the template's do: they come only from the federation's
own apps.
"""

# mypy: disable-error-code="import-not-found, import-untyped", allow-subclassing-any
# (the engine and pandas live in the app's own venv, not in fedstack's)
import contextlib
import shutil
from typing import Any

import jsonpickle
import numpy as np
import pandas as pd
import yaml
from FeatureCloud.app.engine.app import AppState, Role, app_state

INPUT_DIR = "/mnt/input"
OUTPUT_DIR = "/mnt/output"
DEFAULTS = {"input_name": "data.csv", "output_name": "output.csv"}


def read_config() -> dict[str, Any]:
    """The `fc_mean` section of config.yml (defaults when a key or the file is absent)."""
    try:
        with open(f"{INPUT_DIR}/config.yml") as f:
            loaded = yaml.safe_load(f) or {}
    except FileNotFoundError:
        return dict(DEFAULTS)
    return {**DEFAULTS, **(loaded.get("fc_mean") or {})}


def local_mean(path: str) -> Any:
    table = pd.read_csv(path, header=None)
    return table.to_numpy().sum() / table.shape[1]


@app_state("initial", Role.BOTH)
class Initial(AppState):
    def register(self) -> None:
        self.register_transition("compute", Role.BOTH)

    def run(self) -> str:
        config = read_config()
        self.store("config", config)
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(f"{INPUT_DIR}/config.yml", f"{OUTPUT_DIR}/config.yml")
        return "compute"


@app_state("compute", Role.BOTH)
class Compute(AppState):
    def register(self) -> None:
        self.register_transition("aggregate", Role.COORDINATOR)
        self.register_transition("wait", Role.PARTICIPANT)

    def run(self) -> str:
        mean = local_mean(f"{INPUT_DIR}/{self.load('config')['input_name']}")
        self.log(f"local mean {mean}")
        self.send_data_to_coordinator(jsonpickle.encode(mean))
        return "aggregate" if self.is_coordinator else "wait"


@app_state("aggregate", Role.COORDINATOR)
class Aggregate(AppState):
    def register(self) -> None:
        self.register_transition("write", Role.COORDINATOR)

    def run(self) -> str:
        means = [jsonpickle.decode(piece) for piece in self.gather_data()]  # noqa: S301
        result = np.sum(means) / len(means)
        self.store("mean", result)
        self.broadcast_data(jsonpickle.encode(result), send_to_self=False)
        return "write"


@app_state("wait", Role.PARTICIPANT)
class Wait(AppState):
    def register(self) -> None:
        self.register_transition("write", Role.PARTICIPANT)

    def run(self) -> str:
        self.store("mean", jsonpickle.decode(self.await_data()))  # noqa: S301
        return "write"


@app_state("write", Role.BOTH)
class Write(AppState):
    def register(self) -> None:
        self.register_transition("finishing", Role.COORDINATOR)
        self.register_transition("terminal", Role.PARTICIPANT)

    def run(self) -> str:
        with open(f"{OUTPUT_DIR}/{self.load('config')['output_name']}", "a") as f:
            f.write(str(self.load("mean")))
        self.send_data_to_coordinator("DONE")
        return "finishing" if self.is_coordinator else "terminal"


@app_state("finishing", Role.COORDINATOR)
class Finishing(AppState):
    def register(self) -> None:
        self.register_transition("terminal", Role.COORDINATOR)

    def run(self) -> str:
        self.gather_data()
        return "terminal"
