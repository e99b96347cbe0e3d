"""The in-process twins against their engine apps: the same output files and zips, byte for byte.

For 1 to 10 of the demo's sites, mean and linear regression. The platform delivers pieces in
arrival order and both the engine app and its twin add them up in the order they came (a float
sum's last digit depends on it from 5 sites on), so both are fed one and the same order: the
test bed's hub holds each round's pieces for the coordinator and hands them over in an order
drawn from a seed (`Shuffle`). Engine runs go at once up to a budget of app processes, so the
whole comparison costs about two engine runs' worth of waiting (the engine idles 10 s after its
last state) plus the processes' start-up on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import zipfile
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np

from fcapi.emulator.apps.base import FederatedApp, InProcess, in_process
from fcapi.emulator.apps.linear_regression import LinearRegressionApp
from fcapi.emulator.apps.mean import MeanApp, local_mean
from fcapi.emulator.engine.testbed import Outcome, Shuffle, run_sites, run_test
from fcapi.emulator.layout import zip_output
from runner.demo_data import site_csv, site_values
from tests.apps.engine_apps import MEAN

SIZES = range(1, 11)
#: app processes at once (each imports pandas: about 1 s of a core and 80 MB)
BUDGET = 40
APPS: dict[str, tuple[Path, type[FederatedApp]]] = {
    "mean": (MEAN, MeanApp),
    "linear_regression": (MEAN.parent / "linear_regression", LinearRegressionApp),
}


def shuffle(n: int) -> Shuffle:
    return Shuffle(f"twins-{n}")


def regression_csv(index: int) -> str:
    """Demo site `index`'s ten values as five rows of (a, y), in tenths so that sums of
    squares round and the order of the sum shows."""
    v = [x / 10 for x in site_values(index)]
    return "a,y\n" + "".join(f"{v[k]!r},{v[k + 5]!r}\n" for k in range(5))


def demo_sites(root: Path, app: str, n: int) -> list[Path]:
    sites = []
    for i in range(n):
        site = root / f"site{i + 1}"
        site.mkdir(parents=True)
        if app == "mean":
            (site / "data.csv").write_text(site_csv(i))
            shutil.copy(MEAN / "config.yml", site / "config.yml")
        else:
            (site / "data.csv").write_text(regression_csv(i))
        sites.append(site)
    return sites


def twin(cls: type[FederatedApp]) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    def launch(
        input_dir: Path, output_dir: Path, on_line: Callable[[str], None]
    ) -> contextlib.AbstractAsyncContextManager[InProcess]:
        return in_process(cls(), input_dir, output_dir, on_line)

    return launch


@contextlib.asynccontextmanager
async def processes(budget: asyncio.Condition, used: list[int], n: int) -> AsyncIterator[None]:
    """`n` of the budget's app processes, waited for while they are taken."""
    async with budget:
        await budget.wait_for(lambda: used[0] + n <= BUDGET)
        used[0] += n
    try:
        yield
    finally:
        async with budget:
            used[0] -= n
            budget.notify_all()


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def zipped(o: Outcome, dest: Path) -> dict[str, bytes]:
    """The step's result zip as the controller makes it of the output folder: its members."""
    zip_output(o.output_dir, dest)
    with zipfile.ZipFile(dest) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_the_shuffled_orders_reach_the_last_digit():
    """The comparison can fail: at some size the drawn order's mean differs from the client
    order's (so a twin summing in client order, or an engine run fed another order, differs)."""
    differ = []
    for n in SIZES:
        means = [local_mean(site_csv(i)) for i in range(n)]
        pieces = [(str(i + 1), "GATHERROUND1", b"") for i in range(1, n)]
        order = [int(c) - 1 for c, _, _ in shuffle(n).order("GATHERROUND1", pieces)]
        arrived = [means[0], *(means[i] for i in order)]
        if np.sum(arrived) / n != np.sum(means) / n:
            differ.append(n)
    assert differ, "no size where the drawn order shows in the last digit"


async def test_twins_write_what_their_engine_apps_write(tmp_path, engine_venv):
    budget, used = asyncio.Condition(), [0]

    async def engine(folder: Path, sites: list[Path], out: Path) -> list[Outcome]:
        async with processes(budget, used, len(sites)):
            return await run_test(
                folder, sites, seconds=240, poll=1.0, outdir=out, shuffle=shuffle(len(sites))
            )

    runs: list[tuple[str, int, Coroutine[Any, Any, list[Outcome]]]] = []
    for n in sorted(SIZES, reverse=True):  # the largest first: the budget packs better
        for app, (folder, cls) in APPS.items():
            sites = demo_sites(tmp_path / app / f"n{n}", app, n)
            runs.append((f"{app} engine", n, engine(folder, sites, tmp_path / f"e-{app}{n}")))
            twin_run = run_sites(
                twin(cls),
                sites,
                tmp_path / f"t-{app}{n}",
                seconds=120,
                poll=1.0,
                shuffle=shuffle(n),
            )
            runs.append((f"{app} twin", n, twin_run))
    outcomes = await asyncio.gather(*(run for _, _, run in runs))
    done = {(what, n): o for (what, n, _), o in zip(runs, outcomes, strict=True)}
    for (what, n), got in done.items():
        states = [o.state for o in got]
        assert states == ["finished"] * n, f"{what} at {n}: {[o.message for o in got]}"
    for app in APPS:
        for n in SIZES:
            pairs = zip(done[(f"{app} engine", n)], done[(f"{app} twin", n)], strict=True)
            for i, (e, t) in enumerate(pairs):
                where = f"{app}, {n} sites, site {i + 1}"
                assert files(e.output_dir) == files(t.output_dir), where
                assert zipped(e, tmp_path / "e.zip") == zipped(t, tmp_path / "t.zip"), where
    coefficients = json.loads(
        files(done[("linear_regression twin", 10)][0].output_dir)["model.json"]
    )
    assert coefficients["n"] == 50 and coefficients["names"] == ["intercept", "a"]
