"""The in-process mean app against its engine app: the same output files, byte for byte.

Compared at 1 to 4 of the demo's sites, where the engine's answer does not depend on the order
in which the local means reach its coordinator. From 5 sites on it does (the engine sums in
arrival order; the demo's data give two or three different last digits over the orders), so no
twin can match every engine run there; the twin sums in client-list order (test_pure.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fcapi.emulator.apps.base import FederatedApp, Setup
from fcapi.emulator.apps.mean import MeanApp
from fcapi.emulator.engine.testbed import run_test
from runner.demo_data import site_csv
from tests.apps.engine_apps import MEAN

SIZES = (1, 2, 3, 4)


def demo_sites(root: Path, n: int) -> list[Path]:
    sites = []
    for i in range(n):
        site = root / f"site{i + 1}"
        site.mkdir(parents=True)
        (site / "data.csv").write_text(site_csv(i))
        (site / "config.yml").write_bytes((MEAN / "config.yml").read_bytes())
        sites.append(site)
    return sites


def run_twins(sites: list[Path], out: Path) -> list[Path]:
    """The in-process app at every site, its messages routed as the website routes them."""
    ids = [str(i + 1) for i in range(len(sites))]
    outs = [out / f"site{i + 1}" for i in range(len(sites))]
    twins: list[FederatedApp] = [MeanApp() for _ in sites]
    for i, (app, site) in enumerate(zip(twins, sites, strict=True)):
        outs[i].mkdir(parents=True)
        app.setup(Setup(ids[i], i == 0, ids, ids[0], site, outs[i]))
    moved = True
    while moved:
        moved = False
        for i, app in enumerate(twins):
            while app.status().available:
                dest, data = app.status().destination, app.data()
                targets = [dest] if dest else (ids[1:] if i == 0 else ids[:1])
                for t in targets:
                    twins[ids.index(t)].receive(ids[i], "", data)
                moved = True
    assert all(app.status().finished for app in twins)
    return outs


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


async def test_the_in_process_mean_app_writes_what_the_engine_app_writes(tmp_path, engine_venv):
    runs = [demo_sites(tmp_path / f"n{n}", n) for n in SIZES]
    outcomes = await asyncio.gather(
        *(
            run_test(MEAN, sites, seconds=120, poll=1.0, outdir=tmp_path / f"engine{n}")
            for n, sites in zip(SIZES, runs, strict=True)
        )
    )
    for n, sites, engine in zip(SIZES, runs, outcomes, strict=True):
        states = [o.state for o in engine]
        assert states == ["finished"] * n, json.dumps([o.message for o in engine])
        twins = run_twins(sites, tmp_path / f"twin{n}")
        for o, twin in zip(engine, twins, strict=True):
            assert files(o.output_dir) == files(twin), f"{n} sites, {o.site}"
