"""The emulator's pure parts, without HTTP: app math, tokens, fault matching, layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fcapi.emulator import auth
from fcapi.emulator.apps import catalog, emulated
from fcapi.emulator.apps.linear_regression import design, local_stats, solve
from fcapi.emulator.apps.mean import global_mean, local_mean
from fcapi.emulator.faults import Faults, FaultState, names_site
from fcapi.emulator.layout import RunLayout, list_runs


def test_mean_math_matches_reference_check_values():
    means = [local_mean(t) for t in ("1,2,3,4,5", "7,9,11", "2,2,2,4,6,6,6\n")]
    assert means == [3.0, 9.0, 4.0] and str(global_mean(means)) == "5.333333333333333"
    rows = [
        "52,49,26,77,23,30,32,18,98,12",
        "33,94,50,68,88,90,69,12,80,63",
        "26,54,93,79,76,28,48,50,88,20",
    ]
    assert str(global_mean([local_mean(r) for r in rows])) == "54.20000000000001"
    # several rows: all cells summed, divided by the number of columns
    assert local_mean("1,2\n3,4\n") == 5.0
    with pytest.raises(ValueError):
        local_mean("")


def test_regression_statistics_add_up_to_the_pooled_fit():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(30, 3))
    header = ["x1", "y", "x2"]
    parts = [data[:10], data[10:]]
    stats = [local_stats(*design(header, p.tolist(), "y", True)[1:]) for p in parts]
    names, x, y = design(header, data.tolist(), "y", True)
    assert names == ["intercept", "x1", "x2"]
    central, *_ = np.linalg.lstsq(x, y, rcond=None)
    np.testing.assert_allclose(solve(stats), central, atol=1e-12)
    with pytest.raises(ValueError, match="target"):
        design(header, data.tolist(), "nope", True)


def test_tokens_expire_and_are_typed():
    secret = "s" * 64
    tok = auth.make_token(secret, "access", 7, now=1000.0, lifetime=60)
    claims = auth.read_token(secret, tok, "access", 1059.0)
    assert claims is not None
    assert claims["user_id"] == 7
    assert auth.read_token(secret, tok, "access", 1060.0) is None
    assert auth.read_token(secret, tok, "refresh", 1001.0) is None
    assert auth.read_token("other", tok, "access", 1001.0) is None
    assert auth.read_token(secret, tok + "x", "access", 1001.0) is None
    assert auth.read_token(secret, "garbage", "access", 1001.0) is None
    stored = auth.hash_password("pw")
    assert auth.check_password("pw", stored) and not auth.check_password("px", stored)


def test_fault_state_is_deterministic_and_counts_down():
    a, b = FaultState(Faults(error_rate=0.5, seed=3)), FaultState(Faults(error_rate=0.5, seed=3))
    assert [a.draw_5xx() for _ in range(50)] == [b.draw_5xx() for _ in range(50)]
    f = FaultState()
    f.update({"burst_429": 2})
    assert [f.take_429() for _ in range(3)] == [True, True, False]
    assert names_site("*", "x") and names_site("x", "x") and not names_site("y", "x")
    assert not names_site(None, "x")


def test_catalog_has_known_ids_and_every_emulated_app():
    ids = {a.slug: a.id for a in catalog()}
    assert ids["mean-app"] == 66 and ids["federated-svd"] == 85
    assert set(emulated()) == {"mean-app", "linear-regression"}


def test_list_runs_newest_first(tmp_path):
    for run in (1, 2):
        layout = RunLayout(tmp_path, 5, run)
        layout.dir.mkdir(parents=True)
        layout.meta.write_text(json.dumps({"runNr": run, "startedOn": "t", "steps": 1}))
        layout.log(1).write_text("log")
    RunLayout(tmp_path, 5, 2).result_zip(1).write_bytes(b"zip")
    runs = list_runs(tmp_path, 5)
    assert [r["runNr"] for r in runs] == [2, 1]
    assert runs[0]["resultSteps"] == [1] and runs[1]["resultSteps"] == []
    assert RunLayout(tmp_path, 5, 2).result_zip(1).name == "results_pr5_run2_step1.zip"
    assert list_runs(tmp_path, 6) == []


def test_the_global_mean_sums_as_the_engine_app_does():
    """numpy's pairwise sum, not Python's: they differ in the last digit at 8 and 9 of the
    demo's sites (48.525 is Python's sum; the engine app gives 48.525000000000006)."""
    from runner.demo_data import site_csv

    means = [local_mean(site_csv(i)) for i in range(9)]
    assert str(global_mean(means[:8])) == "48.525000000000006"
    assert str(global_mean(means)) == "49.57777777777778"
    assert str(global_mean(means[:3])) == "54.20000000000001"
