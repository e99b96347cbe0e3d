"""Real federated runs: controllers keep their data, apps talk only through the website."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from tests.emulator.helpers import (
    LINREG_APP,
    federation,
    result_files,
    upload,
    wait_status,
)

MEAN_CASES = [
    (["1,2,3,4,5", "7,9,11", "2,2,2,4,6,6,6"], "5.333333333333333"),
    (
        [
            "52,49,26,77,23,30,32,18,98,12",
            "33,94,50,68,88,90,69,12,80,63",
            "26,54,93,79,76,28,48,50,88,20",
        ],
        "54.20000000000001",
    ),
]


@pytest.fixture
async def c(emulator_site):
    async with httpx.AsyncClient(base_url=emulator_site.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(("rows", "expected"), MEAN_CASES)
async def test_mean_app_check_values(c, emulator_controllers, rows, expected):
    ctls = await emulator_controllers(3)
    fed = await federation(c, ctls)
    for ctl, row in zip(ctls, rows, strict=True):
        await upload(ctl.url, fed.pid, {"data.csv": row.encode()})
    assert await wait_status(c, fed.pid, fed.heads[1], {"finished", "error"}) == "finished"
    for ctl in ctls:
        files = await result_files(ctl.url, fed.pid)
        assert files["output.csv"].decode() == expected
        async with httpx.AsyncClient(base_url=ctl.url) as cc:
            runs = (await cc.get("/project-runs/", params={"projectId": fed.pid})).json()
            assert runs[0]["runNr"] == 1 and runs[0]["logSteps"] == [1]
            assert runs[0]["startedOn"]
            log = await cc.get(
                "/logs-download/", params={"projectId": fed.pid, "run": 1, "step": 1}
            )
            assert log.status_code == 200 and "finished" in log.text
    # each site's data stayed at its controller
    for i, ctl in enumerate(ctls):
        others = [r.encode() for j, r in enumerate(rows) if j != i]
        stored = b"".join(p.read_bytes() for p in ctl.data_dir.rglob("*.csv"))
        assert not any(o in stored for o in others)


async def test_mean_app_config_output_name(c, emulator_controllers):
    ctls = await emulator_controllers(2)
    fed = await federation(c, ctls, prefix="cfg")
    cfg = b"fc_mean:\n  input_name: data.csv\n  output_name: result.txt\n"
    for ctl, row in zip(ctls, ["1,2,3", "4,5,6"], strict=True):
        await upload(ctl.url, fed.pid, {"data.csv": row.encode(), "config.yml": cfg})
    assert await wait_status(c, fed.pid, fed.heads[0], {"finished", "error"}) == "finished"
    files = await result_files(ctls[1].url, fed.pid)
    assert files["result.txt"] == b"3.5" and files["config.yml"] == cfg


def _regression_data(seed: int = 3) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    parts = []
    for n in (40, 55, 23):
        x = rng.normal(size=(n, 3))
        y = 1.5 + x @ np.array([2.0, -0.7, 0.3]) + rng.normal(scale=0.1, size=n)
        parts.append(np.column_stack([x, y]))
    pooled = np.vstack(parts)
    design = np.column_stack([np.ones(len(pooled)), pooled[:, :3]])
    coef, *_ = np.linalg.lstsq(design, pooled[:, 3], rcond=None)
    return parts, coef


async def test_linear_regression_equals_centralized_fit(c, emulator_controllers):
    parts, central = _regression_data()
    ctls = await emulator_controllers(3)
    fed = await federation(c, ctls, app_id=LINREG_APP, prefix="lr")
    cfg = b"linear_regression:\n  target: outcome\n"
    for ctl, part in zip(ctls, parts, strict=True):
        lines = ["a,b,outcome,c"] + [
            ",".join(repr(float(v)) for v in r[[0, 1, 3, 2]]) for r in part
        ]
        await upload(ctl.url, fed.pid, {"data.csv": "\n".join(lines).encode(), "config.yml": cfg})
    assert await wait_status(c, fed.pid, fed.heads[0], {"finished", "error"}) == "finished"
    for ctl in ctls:
        model = json.loads((await result_files(ctl.url, fed.pid))["model.json"])
        assert model["names"] == ["intercept", "a", "b", "c"]
        # columns were a,b,c in the pooled fit too (outcome moved to the end there)
        np.testing.assert_allclose(model["coefficients"], central, rtol=0, atol=1e-9)


async def test_site_that_never_finalizes_leaves_project_in_prepare(c, emulator_controllers):
    ctls = await emulator_controllers(3)
    fed = await federation(c, ctls, prefix="nf")
    for ctl in ctls[:2]:
        await upload(ctl.url, fed.pid, {"data.csv": b"1,2"})
    project = (await c.get(f"/api/projects/{fed.pid}/", headers=fed.heads[0])).json()
    assert project["status"] == "prepare" and project["finalized"] == 2
    await upload(ctls[2].url, fed.pid, {"data.csv": b"3,4"})
    assert await wait_status(c, fed.pid, fed.heads[0], {"finished"}) == "finished"


async def test_controller_refusals(c, emulator_site, emulator_controllers):
    (ctl,) = await emulator_controllers(1)
    async with httpx.AsyncClient(base_url=ctl.url) as cc:
        assert (await cc.get("/ping/")).status_code == 200
        # no site_info.json yet: a clear refusal, then it works once a client writes it
        r = await cc.post(
            "/file-upload/", params={"projectId": 1, "fileName": "d.csv"}, content=b"1"
        )
        assert r.status_code == 409 and "site_info.json" in r.json()["detail"]
        fed = await federation(c, [ctl], prefix="rf", prepare=False)
        r = await cc.post("/file-upload/", params={"projectId": fed.pid, "finalize": "true"})
        assert r.status_code == 409 and "prepare" in r.json()["detail"]
        r = await cc.post(
            "/file-upload/", params={"projectId": fed.pid, "fileName": "../x"}, content=b"1"
        )
        assert r.status_code == 400
        assert (await cc.post("/file-upload/", params={"fileName": "x"})).status_code == 400
        r = await cc.post("/file-upload/", params={"projectId": 999, "fileName": "x"}, content=b"1")
        assert r.status_code == 404
        r = await cc.get("/file-download/", params={"projectId": fed.pid, "run": 1, "step": 1})
        assert r.status_code == 404 and r.json()["detail"]
        assert (await cc.get("/logs-download/", params={"projectId": fed.pid})).status_code == 400
        assert (await cc.get("/project-runs/", params={"projectId": fed.pid})).json() == []
        # uploads are refused while the project runs
        await c.put("/_emulator/faults", json={"app_hang": "*"})
        await c.put(f"/api/projects/{fed.pid}/", headers=fed.heads[0], json={"status": "prepare"})
        await upload(ctl.url, fed.pid, {"data.csv": b"1,2"})
        await wait_status(c, fed.pid, fed.heads[0], {"running"})
        r = await cc.post(
            "/file-upload/", params={"projectId": fed.pid, "fileName": "d.csv"}, content=b"1"
        )
        assert r.status_code == 409 and "running" in r.json()["detail"]
        logs = (await cc.get("/logs/", params={"from": 0})).json()
        assert logs and {"time", "level", "message"} <= logs[0].keys()
        later = (await cc.get("/logs/", params={"from": len(logs) - 1})).json()
        assert later == logs[-1:]


async def test_second_run_is_newest_first(c, emulator_controllers):
    ctls = await emulator_controllers(2)
    fed = await federation(c, ctls, prefix="r2")
    for ctl, row in zip(ctls, ["1,2", "3,4"], strict=True):
        await upload(ctl.url, fed.pid, {"data.csv": row.encode()})
    await wait_status(c, fed.pid, fed.heads[0], {"finished"})
    await c.put(f"/api/projects/{fed.pid}/", headers=fed.heads[0], json={"status": "ready"})
    await c.put(f"/api/projects/{fed.pid}/", headers=fed.heads[0], json={"status": "prepare"})
    await upload(ctls[0].url, fed.pid, {"data.csv": b"5,7"})  # new data at one site
    await upload(ctls[1].url, fed.pid, {})  # the other reuses its upload
    await wait_status(c, fed.pid, fed.heads[0], {"finished"})
    async with httpx.AsyncClient(base_url=ctls[1].url) as cc:
        runs = (await cc.get("/project-runs/", params={"projectId": fed.pid})).json()
    assert [r["runNr"] for r in runs] == [2, 1]
    assert (await result_files(ctls[1].url, fed.pid))[
        "output.csv"
    ] == b"4.75"  # (5+7)/2 and (3+4)/2, averaged
    run2 = ctls[0].data_dir / "workflows" / f"Project_{fed.pid}" / "Run_2"
    assert (run2 / f"results_pr{fed.pid}_run2_step1.zip").exists()


async def test_refinalize_after_reset_during_prepare(c, emulator_controllers):
    """A reset while a site waits must not swallow that site's next finalize."""
    ctls = await emulator_controllers(2)
    fed = await federation(c, ctls, prefix="rp")
    await upload(ctls[0].url, fed.pid, {"data.csv": b"1,3"})
    for word in ("ready", "prepare"):
        r = await c.put(f"/api/projects/{fed.pid}/", headers=fed.heads[0], json={"status": word})
        assert r.status_code == 200
    project = (await c.get(f"/api/projects/{fed.pid}/", headers=fed.heads[0])).json()
    assert project["finalized"] == 0
    await upload(ctls[0].url, fed.pid, {})
    await upload(ctls[1].url, fed.pid, {"data.csv": b"5,7"})
    assert await wait_status(c, fed.pid, fed.heads[0], {"finished", "error"}) == "finished"
    assert (await result_files(ctls[0].url, fed.pid))["output.csv"] == b"4.0"
