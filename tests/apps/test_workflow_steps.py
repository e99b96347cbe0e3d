"""A workflow of two engine apps in one project: each step's output is the next step's input."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import numpy as np

from fcapi.emulator.apps import REGISTERED, AppInfo
from fcapi.emulator.engine.folders import AppFolder
from tests.apps.engine_apps import MEAN
from tests.emulator.helpers import federation, upload, wait_status, workflow_body
from tests.emulator.test_federated import _regression_data

APPS = MEAN.parent
STANDARDIZE, LINREG = 902, 901
CONFIG = b"standardize:\n  exclude: [outcome]\nlinear_regression:\n  target: outcome\n"


async def step_files(ctl_url: str, pid: int, step: int) -> dict[str, bytes]:
    async with httpx.AsyncClient(base_url=ctl_url) as cc:
        r = await cc.get("/file-download/", params={"projectId": pid, "step": step, "run": 1})
        assert r.status_code == 200, r.text
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    return {n: zf.read(n) for n in zf.namelist()}


def centralized(parts: list[np.ndarray]) -> list[float]:
    """The fit on the pooled data, its features standardised with the pooled mean and std."""
    pooled = np.vstack(parts)
    x = pooled[:, :3]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    coef, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x]), pooled[:, 3], rcond=None)
    return [float(v) for v in coef]


async def test_standardise_then_regress_equals_the_centralized_fit(
    emulator_site, emulator_controllers, engine_venv, monkeypatch
):
    monkeypatch.setitem(REGISTERED, STANDARDIZE, AppInfo(STANDARDIZE, "standardize", "Std"))
    folders = {
        "standardize": AppFolder("standardize", STANDARDIZE, APPS / "standardize"),
        "linear-regression": AppFolder("linear-regression", LINREG, APPS / "linear_regression"),
    }
    ctls = await emulator_controllers(3, folders=folders, app_poll=0.5)
    parts, _ = _regression_data()
    async with httpx.AsyncClient(base_url=emulator_site.url, timeout=10) as c:
        fed = await federation(c, ctls, app_id=STANDARDIZE, prefix="wf", prepare=False)
        owner = fed.heads[0]
        assert (await c.post(f"/api/apps/{LINREG}/purchase/", headers=owner)).status_code == 201
        body = workflow_body(fed.pid, STANDARDIZE)
        body["workflow"].append({**body["workflow"][0], "federatedApp": {"id": LINREG}, "order": 1})
        assert (
            await c.put(f"/api/projects/{fed.pid}/", headers=owner, json=body)
        ).status_code == 200
        r = await c.put(f"/api/projects/{fed.pid}/", headers=owner, json={"status": "prepare"})
        assert r.status_code == 200, r.text
        for ctl, part in zip(ctls, parts, strict=True):
            lines = ["a,b,outcome,c"] + [
                ",".join(repr(float(v)) for v in r[[0, 1, 3, 2]]) for r in part
            ]
            files = {"data.csv": "\n".join(lines).encode(), "config.yml": CONFIG}
            await upload(ctl.url, fed.pid, files)
        assert await wait_status(c, fed.pid, owner, {"finished", "error"}, 150) == "finished"
    want = centralized(parts)
    for ctl in ctls:
        first = await step_files(ctl.url, fed.pid, 1)
        assert sorted(first) == ["config.yml", "data.csv"]
        model = json.loads((await step_files(ctl.url, fed.pid, 2))["model.json"])
        assert model["names"] == ["intercept", "a", "b", "c"]
        np.testing.assert_allclose(model["coefficients"], want, rtol=0, atol=1e-9)
