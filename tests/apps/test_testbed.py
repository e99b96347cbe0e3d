"""`python -m fcapi.emulator test`: engine apps as real processes, driven over their HTTP API."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path

from fcapi.emulator.engine.testbed import report, run_test
from tests.apps import engine_apps as apps
from tests.emulator.test_federated import MEAN_CASES


def app_processes(folder: Path) -> list[int]:
    """Pids of processes started from `folder` (their cwd or command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(folder) in cmdline or cwd == str(folder):
            found.append(int(entry.name))
    return found


async def test_mean_check_values_through_the_test_bed(tmp_path, engine_venv):
    (rows_a, want_a), (rows_b, want_b) = MEAN_CASES
    sites_a = apps.write_sites(tmp_path / "a", rows_a)
    sites_b = apps.write_sites(tmp_path / "b", rows_b)
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "fcapi.emulator", "test", str(apps.MEAN), "--json"),
        *(arg for site in sites_b for arg in ("--site", str(site))),
        *("--outdir", str(tmp_path / "out-b")),
        stdout=asyncio.subprocess.PIPE,
    )
    outcomes = await run_test(apps.MEAN, sites_a, seconds=120, poll=1.0, outdir=tmp_path / "out-a")
    out, _ = await asyncio.wait_for(cli.communicate(), 120)
    assert cli.returncode == 0
    assert [o.state for o in outcomes] == ["finished"] * 3
    assert [(o.output_dir / "output.csv").read_text() for o in outcomes] == [want_a] * 3
    doc = json.loads(out)
    assert doc["ok"] is True
    assert [s["files"] for s in doc["sites"]] == [["config.yml", "output.csv"]] * 3
    results = [(Path(s["output_dir"]) / "output.csv").read_text() for s in doc["sites"]]
    assert results == [want_b] * 3
    # the engine serves a status with data queued as a JSON string, as text/html
    assert "text/html" in outcomes[1].log.read_text()
    assert app_processes(apps.MEAN) == []


async def test_an_app_that_raises_fails_with_the_exception_and_its_traceback(tmp_path, engine_venv):
    app = apps.write_app(tmp_path / "raises", apps.RAISES)
    sites = apps.write_sites(tmp_path / "sites", ["1", "2", "3"])
    outcomes = await run_test(app, sites, seconds=60, poll=0.5, outdir=tmp_path / "out")
    assert [o.state for o in outcomes][1:] == ["error", "error"]
    assert "ZeroDivisionError" in outcomes[1].message
    assert outcomes[0].state == "stopped"  # the coordinator, waiting, is ended
    log = outcomes[1].log.read_text()
    assert "Traceback (most recent call last)" in log and "1 / 0" in log
    printed = io.StringIO()
    assert report(outcomes, as_json=False, out=printed) == 1
    assert "(participant, client 2): error: " in printed.getvalue()
    assert app_processes(app) == []


async def test_an_app_that_hangs_is_ended_by_the_deadline_naming_site_and_state(
    tmp_path, engine_venv
):
    app = apps.write_app(tmp_path / "hangs", apps.HANGS)
    sites = apps.write_sites(tmp_path / "sites", ["1", "2"])
    outcomes = await run_test(app, sites, seconds=8, poll=0.5, outdir=tmp_path / "out")
    hung = [o for o in outcomes if o.state == "deadline"]
    assert hung, [o.message for o in outcomes]
    assert "'site" in hung[0].message and "message 'spin'" in hung[0].message
    assert "deadline (8 s)" in hung[0].message
    assert app_processes(app) == []


async def test_memos_none_empty_and_needing_quoting_reach_the_waiting_state(
    tmp_path, engine_venv, monkeypatch
):
    # rootless namespaces (a user namespace) as a controller not run by root would use
    monkeypatch.setenv("FEDSTACK_APP_ISOLATION", "user")
    app = apps.write_app(tmp_path / "memos", apps.MEMOS)
    sites = apps.write_sites(tmp_path / "sites", ["1", "2"])
    outcomes = await run_test(app, sites, seconds=90, poll=0.5, outdir=tmp_path / "out")
    assert [o.state for o in outcomes] == ["finished", "finished"], outcomes
    got = json.loads((outcomes[0].output_dir / "memos.json").read_text())
    assert got == {
        "None": "value None",
        "''": "value ''",
        repr("round 1/2&x=%+\u00e9"): f"value {'round 1/2&x=%+' + chr(0xE9)!r}",
    }


async def test_smpc_pieces_reach_the_coordinator_as_one_package(tmp_path, engine_venv):
    app = apps.write_app(tmp_path / "smpc", apps.SMPC)
    sites = apps.write_sites(tmp_path / "sites", ["1", "2", "3"])
    outcomes = await run_test(app, sites, seconds=90, poll=0.5, outdir=tmp_path / "out")
    assert [o.state for o in outcomes] == ["finished"] * 3, outcomes
    result = json.loads((outcomes[0].output_dir / "smpc.json").read_text())
    assert result == {"total": [1 + 2 + 3, 2 + 4 + 6], "left": 0}
    assert "more data pieces" not in outcomes[0].log.read_text()


async def test_dp_is_refused_with_a_clear_message(tmp_path, engine_venv):
    app = apps.write_app(tmp_path / "dp", apps.DP)
    sites = apps.write_sites(tmp_path / "sites", ["1", "2"])
    outcomes = await run_test(app, sites, seconds=60, poll=0.5, outdir=tmp_path / "out")
    assert any("differential privacy" in o.message for o in outcomes), outcomes


def test_a_folder_that_is_no_app_is_one_line_and_exit_2(tmp_path):
    import subprocess

    (tmp_path / "site").mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fcapi.emulator",
            "test",
            str(tmp_path),
            "--site",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"fcapi-emulator test: app folder {tmp_path} has no main.py and no requirements.txt"
    ]


async def test_engine_linear_regression_equals_the_centralized_fit(tmp_path, engine_venv):
    import numpy as np

    from tests.emulator.test_federated import _regression_data

    parts, central = _regression_data()
    sites = []
    for i, part in enumerate(parts):
        site = tmp_path / f"site{i + 1}"
        site.mkdir()
        lines = ["a,b,outcome,c"] + [
            ",".join(repr(float(v)) for v in r[[0, 1, 3, 2]]) for r in part
        ]
        (site / "data.csv").write_text("\n".join(lines) + "\n")
        (site / "config.yml").write_text("linear_regression:\n  target: outcome\n")
        sites.append(site)
    app = apps.MEAN.parent / "linear_regression"
    outcomes = await run_test(app, sites, seconds=90, poll=1.0, outdir=tmp_path / "out")
    assert [o.state for o in outcomes] == ["finished"] * 3, outcomes
    for o in outcomes:
        model = json.loads((o.output_dir / "model.json").read_text())
        assert model["names"] == ["intercept", "a", "b", "c"]
        np.testing.assert_allclose(model["coefficients"], central, rtol=0, atol=1e-9)
    assert json.loads((outcomes[0].output_dir / "model.json").read_text())["n"] == 40 + 55 + 23
