"""Every fault knob is observable over HTTP, and request counts are exact."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.emulator.helpers import account, federation, upload, wait_status


@pytest.fixture
async def c(emulator_site):
    async with httpx.AsyncClient(base_url=emulator_site.url, timeout=10) as client:
        yield client


async def test_faults_endpoint_roundtrip_and_validation(c):
    f = (await c.get("/_emulator/faults")).json()
    assert f["error_rate"] == 0 and f["burst_429"] == 0 and f["app_hang"] is None
    r = await c.put("/_emulator/faults", json={"latency_ms": 5, "app_fail": "x"})
    assert r.status_code == 200 and r.json()["latency_ms"] == 5 and r.json()["app_fail"] == "x"
    assert (await c.put("/_emulator/faults", json={"error_rate": 2})).status_code == 400
    assert (await c.put("/_emulator/faults", json={"no_such_knob": 1})).status_code == 400


async def test_latency(c):
    t0 = time.monotonic()
    await c.get("/api/apps/")
    fast = time.monotonic() - t0
    await c.put("/_emulator/faults", json={"latency_ms": 200})
    t0 = time.monotonic()
    assert (await c.get("/api/apps/")).status_code == 200
    assert time.monotonic() - t0 >= 0.2 > fast


async def _statuses(c, n):
    return [(await c.get("/api/apps/")).status_code for _ in range(n)]


async def test_5xx_rate_is_seeded_and_deterministic(c):
    await c.put("/_emulator/faults", json={"error_rate": 0.3, "seed": 7, "error_status": 502})
    first = await _statuses(c, 60)
    await c.put("/_emulator/faults", json={"seed": 7})  # reseeds the draw
    second = await _statuses(c, 60)
    assert first == second
    assert set(first) == {200, 502} and 8 <= first.count(502) <= 30
    r = await c.get("/api/apps/")
    if r.status_code == 502:
        assert r.json()["detail"]


async def test_429_burst_with_retry_after(c):
    await c.delete("/_emulator/requests")
    await c.put("/_emulator/faults", json={"burst_429": 3, "retry_after": 2})
    answers = [await c.get("/api/apps/") for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 429, 429, 200]
    assert answers[0].headers["retry-after"] == "2" and "throttled" in answers[0].json()["detail"]
    counts = (await c.get("/_emulator/requests")).json()
    assert counts["by_status"] == {"429": 3, "200": 1} and counts["total"] == 4


async def test_short_access_token_lifetime(c):
    await c.put("/_emulator/faults", json={"access_lifetime": 0.3})
    h = await account(c, "short@example.org")
    assert (await c.get("/api/user/info/", headers=h)).status_code == 200
    deadline = time.monotonic() + 5
    status = 200
    while status == 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        status = (await c.get("/api/user/info/", headers=h)).status_code
    assert status == 401


async def test_request_counts_by_templated_endpoint_and_user(c):
    h = await account(c, "count@example.org")
    await c.delete("/_emulator/requests")
    await c.post("/api/apps/66/purchase/", headers=h)
    pid = (
        await c.post(
            "/api/projects/", headers=h, json={"name": "n", "description": "", "status": ""}
        )
    ).json()["id"]
    for _ in range(3):
        await c.get(f"/api/projects/{pid}/", headers=h)
    await c.put(f"/api/projects/{pid}/", headers=h, json={"status": "init"})
    await c.get("/api/apps/")
    counts = (await c.get("/_emulator/requests")).json()
    assert counts["by_endpoint"] == {
        "POST /api/apps/{app_id}/purchase/": 1,
        "POST /api/projects/": 1,
        "GET /api/projects/{id}/": 3,
        "PUT /api/projects/{id}/": 1,
        "GET /api/apps/": 1,
    }
    assert counts["by_user"] == {"count@example.org": 6}
    assert counts["total"] == 7


async def test_controller_has_its_own_knobs(emulator_controllers):
    (ctl,) = await emulator_controllers(1, faults={"burst_429": 1, "retry_after": 3})
    async with httpx.AsyncClient(base_url=ctl.url) as cc:
        first = await cc.get("/ping/")
        assert first.status_code == 429 and first.headers["retry-after"] == "3"
        assert (await cc.get("/ping/")).status_code == 200
        await cc.put("/_emulator/faults", json={"error_rate": 1.0})
        assert (await cc.get("/ping/")).status_code == 503
        counts = (await cc.get("/_emulator/requests")).json()
        assert counts["by_endpoint"] == {"GET /ping/": 3}


async def test_app_fails_at_named_site(c, emulator_controllers):
    ctls = await emulator_controllers(3)
    fed = await federation(c, ctls, prefix="fail")
    await c.put("/_emulator/faults", json={"app_fail": "fail-site1"})
    for ctl in ctls:
        await upload(ctl.url, fed.pid, {"data.csv": b"1,2"})
    assert await wait_status(c, fed.pid, fed.heads[0], {"finished", "error"}) == "error"
    project = (await c.get(f"/api/projects/{fed.pid}/", headers=fed.heads[0])).json()
    assert any("fail-site1" in e for e in project["errors"])
    async with httpx.AsyncClient(base_url=ctls[1].url) as cc:
        logs = (await cc.get("/logs/")).json()
        runs = (await cc.get("/project-runs/", params={"projectId": fed.pid})).json()
        log = await cc.get("/logs-download/", params={"projectId": fed.pid, "run": 1, "step": 1})
    assert any(e["level"] == "error" for e in logs)
    assert runs[0]["logSteps"] == [1] and "app_fail" in log.text


async def test_app_hangs_at_named_site_until_shutdown(c, emulator_site, emulator_controllers):
    ctls = await emulator_controllers(3)
    fed = await federation(c, ctls, prefix="hang")
    await c.put("/_emulator/faults", json={"app_hang": "hang-site2"})
    for ctl in ctls:
        await upload(ctl.url, fed.pid, {"data.csv": b"1,2"})
    await wait_status(c, fed.pid, fed.heads[0], {"running"})
    project = emulator_site.context.data.projects[fed.pid]
    deadline = time.monotonic() + 10
    # every site runs; the others wait for the hanging site's message, so nothing finishes
    while project.site_states != {"1": "running", "2": "running", "3": "running"}:
        assert time.monotonic() < deadline, project.site_states
        await asyncio.sleep(0.02)
    assert (await c.get(f"/api/projects/{fed.pid}/", headers=fed.heads[0])).json()[
        "status"
    ] == "running"
    r = await c.put(f"/api/projects/{fed.pid}/", headers=fed.heads[1], json={"status": "shutdown"})
    assert r.status_code == 200 and r.json()["status"] == "stopped"
    # every controller notices and ends its run
    deadline = time.monotonic() + 10
    for ctl in ctls:
        while not any("stopped" in e["message"] for e in ctl.context.logs):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    assert project.site_states == {"1": "running", "2": "running", "3": "running"}


async def test_controller_dies_mid_run(c, emulator_controllers):
    ctls = await emulator_controllers(2)
    fed = await federation(c, ctls, prefix="die")
    await c.put("/_emulator/faults", json={"die_mid_run": "die-site1"})
    for ctl in ctls:
        await upload(ctl.url, fed.pid, {"data.csv": b"1,2"})
    await wait_status(c, fed.pid, fed.heads[0], {"running"})
    deadline = time.monotonic() + 10
    while True:
        try:
            async with httpx.AsyncClient(base_url=ctls[1].url) as cc:
                await cc.get("/ping/", timeout=1)
        except httpx.TransportError:
            break
        assert time.monotonic() < deadline, "the controller is still up"
        await asyncio.sleep(0.02)
    project = (await c.get(f"/api/projects/{fed.pid}/", headers=fed.heads[0])).json()
    assert project["status"] == "running"  # as on the platform: a dead site stalls the run
