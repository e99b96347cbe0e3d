"""Small apps on FeatureCloud's engine for the tests, each a folder as the app template lays it out.

Every test app shares apps/mean's main.py (the image's entry point, unchanged) and its
requirements.txt, so all of them run in the one cached venv; only `states.py` differs. They are
written out at test time, not committed as folders, because each folder's `main.py` and
`states.py` would be the same top-level module names to mypy.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

MEAN = Path(__file__).resolve().parents[2] / "apps" / "mean"

HEAD = """\
# mypy: ignore-errors
import json
import time

from FeatureCloud.app.engine.app import AppState, Role, app_state
"""

RAISES = """
@app_state("initial", Role.BOTH)
class Initial(AppState):
    def register(self):
        self.register_transition("terminal", Role.BOTH)

    def run(self):
        if not self.is_coordinator:
            return str(1 / 0)
        self.gather_data()
        return "terminal"
"""

HANGS = """
@app_state("initial", Role.BOTH)
class Initial(AppState):
    def register(self):
        self.register_transition("spin", Role.BOTH)

    def run(self):
        return "spin"


@app_state("spin", Role.BOTH)
class Spin(AppState):
    def register(self):
        self.register_transition("terminal", Role.BOTH)

    def run(self):
        while True:
            time.sleep(0.5)
"""

#: None travels as "None", "" as itself, and the third needs quoting both ways
MEMOS = """
MEMOS = [None, "", "round 1/2&x=%+\\u00e9"]


@app_state("initial", Role.BOTH)
class Initial(AppState):
    def register(self):
        self.register_transition("terminal", Role.BOTH)

    def run(self):
        if not self.is_coordinator:
            for memo in MEMOS:
                self.send_data_to_participant(f"value {memo!r}", self.coordintor_id, memo=memo)
            return "terminal"
        got = {repr(memo): self.await_data(n=1, memo=memo) for memo in MEMOS}
        with open("/mnt/output/memos.json", "w") as f:
            json.dump(got, f, sort_keys=True)
        return "terminal"
"""

SMPC = """
@app_state("initial", Role.BOTH)
class Initial(AppState):
    def register(self):
        self.register_transition("terminal", Role.BOTH)

    def run(self):
        k = self.clients.index(self.id) + 1
        self.send_data_to_coordinator([k, 2 * k], use_smpc=True)
        if self.is_coordinator:
            total = self.aggregate_data(use_smpc=True)
            left = sum(len(v) for v in self._app.data_incoming.values())
            with open("/mnt/output/smpc.json", "w") as f:
                json.dump({"total": total, "left": left}, f)
        return "terminal"
"""

DP = """
@app_state("initial", Role.BOTH)
class Initial(AppState):
    def register(self):
        self.register_transition("terminal", Role.BOTH)

    def run(self):
        self.send_data_to_coordinator(1.0, use_dp=True)
        if self.is_coordinator:
            self.gather_data(use_dp=True)
        return "terminal"
"""


def write_app(folder: Path, states: str) -> Path:
    """An app folder with `states` as its states.py; the path."""
    folder.mkdir(parents=True)
    for name in ("main.py", "requirements.txt"):
        shutil.copy(MEAN / name, folder / name)
    (folder / "states.py").write_text(HEAD + textwrap.dedent(states))
    return folder


def write_sites(root: Path, rows: list[str]) -> list[Path]:
    """One folder per site with its data.csv and the mean app's config.yml."""
    sites = []
    for i, row in enumerate(rows):
        site = root / f"site{i + 1}"
        site.mkdir(parents=True)
        (site / "data.csv").write_text(row + "\n")
        shutil.copy(MEAN / "config.yml", site / "config.yml")
        sites.append(site)
    return sites
