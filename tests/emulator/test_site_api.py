"""The emulated website's public API over real HTTP: every endpoint and every refusal."""

from __future__ import annotations

import httpx
import pytest

from fcapi.models import Site
from fcapi.status import REQUESTABLE, parse_status
from tests.emulator.helpers import MEAN_APP, PASSWORD, account, federation, workflow_body


@pytest.fixture
async def c(emulator_site):
    async with httpx.AsyncClient(base_url=emulator_site.url, timeout=10) as client:
        yield client


async def test_signup_login_refresh_user_info(c):
    r = await c.post(
        "/api/auth/user/signup/",
        json={
            "email": "a@example.org",
            "password": PASSWORD,
            "firstName": "A",
            "lastName": "B",
            "role": "user",
        },
    )
    assert r.status_code == 201 and r.json()["email"] == "a@example.org"
    dup = await c.post(
        "/api/auth/user/signup/", json={"email": "a@example.org", "password": "x1234"}
    )
    assert dup.status_code == 400 and "already exists" in str(dup.json()["detail"])
    bad = await c.post("/api/auth/login/", json={"username": "a@example.org", "password": "nope"})
    assert bad.status_code == 401 and "No active account" in bad.json()["detail"]
    pair = (
        await c.post("/api/auth/login/", json={"username": "a@example.org", "password": PASSWORD})
    ).json()
    assert pair["access"].count(".") == 2 and pair["refresh"].count(".") == 2
    ok = await c.get("/api/user/info/", headers={"Authorization": f"Bearer {pair['access']}"})
    assert ok.status_code == 200 and ok.json()["email"] == "a@example.org"
    assert (await c.get("/api/user/info/")).status_code == 401
    junk = await c.get("/api/user/info/", headers={"Authorization": "Bearer junk"})
    assert junk.status_code == 401 and junk.json()["detail"]
    # a refresh token is not an access token, and vice versa
    wrong = await c.get("/api/user/info/", headers={"Authorization": f"Bearer {pair['refresh']}"})
    assert wrong.status_code == 401
    assert (
        await c.post("/api/auth/token/refresh/", json={"refresh": pair["access"]})
    ).status_code == 401
    new = await c.post("/api/auth/token/refresh/", json={"refresh": pair["refresh"]})
    assert new.status_code == 200
    ok = await c.get("/api/user/info/", headers={"Authorization": f"Bearer {new.json()['access']}"})
    assert ok.status_code == 200
    out = await c.post("/api/auth/logout/", headers={"Authorization": f"Bearer {pair['access']}"})
    assert out.status_code == 200


async def test_site_get_create(c):
    h = await account(c, "s@example.org")
    assert (await c.get("/api/site/", headers=h)).status_code == 404
    body = {
        "name": "Site S",
        "organization": None,
        "address": None,
        "zip": None,
        "city": None,
        "country": None,
        "firstName": None,
        "lastName": None,
        "phone": None,
    }
    r = await c.post("/api/site/", headers=h, json=body)
    assert r.status_code == 201
    site = Site.model_validate((await c.get("/api/site/", headers=h)).json())
    assert site.name == "Site S" and site.email == "s@example.org" and len(site.token) == 36
    again = await c.post("/api/site/", headers=h, json=body)
    assert again.status_code == 400
    assert (await c.get("/api/site/")).status_code == 401


async def test_apps_and_library(c):
    apps = (await c.get("/api/apps/")).json()
    by_slug = {a["slug"]: a["id"] for a in apps}
    assert by_slug["mean-app"] == 66 and by_slug["random-forest"] == 50
    assert by_slug["federated-svd"] == 85 and "ada-boost" in by_slug
    assert by_slug["linear-regression"] == 901
    h = await account(c, "l@example.org")
    assert (await c.get("/api/apps/purchase/", headers=h)).json() == []
    assert (await c.post("/api/apps/66/purchase/", headers=h)).status_code == 201
    assert (await c.post("/api/apps/66/purchase/", headers=h)).status_code == 201  # idempotent
    lib = (await c.get("/api/apps/purchase/", headers=h)).json()
    assert [a["slug"] for a in lib] == ["mean-app"]
    assert (await c.post("/api/apps/999999/purchase/", headers=h)).status_code == 404
    assert (await c.delete("/api/apps/66/purchase/", headers=h)).status_code == 204
    assert (await c.delete("/api/apps/66/purchase/", headers=h)).status_code == 404
    assert (await c.get("/api/apps/purchase/", headers=h)).json() == []
    assert (await c.get("/api/apps/purchase/")).status_code == 401


async def test_project_lifecycle_tokens_and_roles(c, emulator_controllers):
    ctls = await emulator_controllers(0)
    coord = await account(c, "co@example.org", "co-site")
    part = await account(c, "pa@example.org", "pa-site")
    other = await account(c, "ot@example.org", "ot-site")
    r = await c.post(
        "/api/projects/", headers=coord, json={"name": "n", "description": "", "status": ""}
    )
    assert r.status_code == 201
    pid = r.json()["id"]
    assert r.json()["status"] == "" and r.json()["role"] == "coordinator"
    # workflow needs the app in the library
    r = await c.put(f"/api/projects/{pid}/", headers=coord, json=workflow_body(pid, MEAN_APP))
    assert r.status_code == 400 and "library" in r.json()["detail"]
    await c.post("/api/apps/66/purchase/", headers=coord)
    r = await c.put(f"/api/projects/{pid}/", headers=coord, json=workflow_body(pid, 424242))
    assert r.status_code == 400
    r = await c.put(f"/api/projects/{pid}/", headers=coord, json=workflow_body(pid, MEAN_APP))
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert r.json()["workflow"][0]["federatedApp"]["id"] == MEAN_APP
    # strangers see nothing
    assert (await c.get(f"/api/projects/{pid}/", headers=other)).status_code == 404
    assert (await c.get("/api/projects/999/", headers=coord)).status_code == 404
    # tokens: coordinator-only, single use
    t = await c.post(f"/api/project-tokens/{pid}/", headers=coord, json={"cmd": "create"})
    assert t.status_code == 201 and {"id", "token", "project"} <= t.json().keys()
    tok = t.json()
    bad_cmd = await c.post(f"/api/project-tokens/{pid}/", headers=coord, json={"cmd": "x"})
    assert bad_cmd.status_code == 400
    j = await c.post(
        "/api/project-tokens/", headers=part, json={"token": tok["token"], "cmd": "join"}
    )
    assert j.status_code == 201 and j.json()["project"] == pid
    again = await c.post(
        "/api/project-tokens/", headers=other, json={"token": tok["token"], "cmd": "join"}
    )
    assert again.status_code == 400 and "already been used" in again.json()["detail"]
    unknown = await c.post(
        "/api/project-tokens/", headers=other, json={"token": "x", "cmd": "join"}
    )
    assert unknown.status_code == 404
    assert (
        await c.post(f"/api/project-tokens/{pid}/", headers=part, json={"cmd": "create"})
    ).status_code == 403
    p = (await c.get(f"/api/projects/{pid}/", headers=part)).json()
    assert p["role"] == "participant" and p["status"] == "ready"
    listed = (await c.get(f"/api/project-tokens/{pid}/", headers=coord)).json()
    assert [x["used"] for x in listed] == [True]
    t2 = (await c.post(f"/api/project-tokens/{pid}/", headers=coord, json={"cmd": "create"})).json()
    assert (
        await c.delete(f"/api/project-tokens/token/{t2['id']}/", headers=part)
    ).status_code == 403
    assert (
        await c.delete(f"/api/project-tokens/token/{t2['id']}/", headers=coord)
    ).status_code == 204
    assert (
        await c.delete(f"/api/project-tokens/token/{t2['id']}/", headers=coord)
    ).status_code == 404
    # coordinator-only prepare and workflow
    r = await c.put(f"/api/projects/{pid}/", headers=part, json={"status": "prepare"})
    assert r.status_code == 403 and "coordinator" in r.json()["detail"]
    r = await c.put(f"/api/projects/{pid}/", headers=part, json=workflow_body(pid, MEAN_APP))
    assert r.status_code == 403
    r = await c.put(f"/api/projects/{pid}/", headers=coord, json={"status": "bogus"})
    assert r.status_code == 400
    r = await c.put(f"/api/projects/{pid}/", headers=coord, json={"status": "prepare"})
    assert r.status_code == 200 and r.json()["status"] == "prepare"
    r = await c.put(f"/api/projects/{pid}/", headers=coord, json=workflow_body(pid, MEAN_APP))
    assert r.status_code == 409
    late = (
        await c.post(f"/api/project-tokens/{pid}/", headers=coord, json={"cmd": "create"})
    ).json()
    r = await c.post(
        "/api/project-tokens/", headers=other, json={"token": late["token"], "cmd": "join"}
    )
    assert r.status_code == 409
    # lists and delete
    assert [x["id"] for x in (await c.get("/api/projects/", headers=part)).json()] == [pid]
    assert (await c.get("/api/projects/", headers=other)).json() == []
    assert (await c.delete(f"/api/projects/{pid}/", headers=part)).status_code == 403
    assert (await c.delete(f"/api/projects/{pid}/", headers=coord)).status_code == 204
    assert (await c.get(f"/api/projects/{pid}/", headers=coord)).status_code == 404
    assert ctls == []


def _path_to(status: str) -> list[str]:
    """PUT requests (after a ready workflow) that bring a project to `status` without a run."""
    return {"": [], "init": [], "ready": [], "prepare": ["prepare"]}[status]


@pytest.mark.parametrize("start", ["ready", "prepare"])
async def test_requested_transitions_table(c, start):
    """Every status word from `ready`/`prepare`: allowed ones move, others get 409."""
    words = ["ready", "prepare", "shutdown", "running", "finished", "error", "failed", "init"]
    h = await account(c, f"t-{start}@example.org", f"t-{start}")
    await c.post("/api/apps/66/purchase/", headers=h)
    for word in words:
        pid = (
            await c.post(
                "/api/projects/", headers=h, json={"name": "t", "description": "", "status": ""}
            )
        ).json()["id"]
        await c.put(f"/api/projects/{pid}/", headers=h, json=workflow_body(pid, MEAN_APP))
        for step in _path_to(start):
            assert (
                await c.put(f"/api/projects/{pid}/", headers=h, json={"status": step})
            ).status_code == 200
        r = await c.put(f"/api/projects/{pid}/", headers=h, json={"status": word})
        allowed = parse_status(word) in REQUESTABLE[parse_status(start)]
        assert r.status_code == (200 if allowed else 409), (start, word, r.text)
        if not allowed:
            assert "cannot move" in r.json()["detail"]


async def test_new_project_without_workflow_cannot_be_ready_or_prepared(c):
    h = await account(c, "nw@example.org")
    pid = (
        await c.post(
            "/api/projects/", headers=h, json={"name": "t", "description": "", "status": ""}
        )
    ).json()["id"]
    r = await c.put(f"/api/projects/{pid}/", headers=h, json={"status": "prepare"})
    assert r.status_code == 409
    r = await c.put(f"/api/projects/{pid}/", headers=h, json={"status": "ready"})
    assert r.status_code == 409 and "no workflow" in r.json()["detail"]
    r = await c.put(f"/api/projects/{pid}/", headers=h, json={"status": "init"})
    assert r.status_code == 200 and r.json()["status"] == "init"


async def test_terminal_statuses_reset_to_ready(c, emulator_site, emulator_controllers):
    """running -> shutdown -> stopped -> ready, and finished/error -> ready (via real runs)."""
    from tests.emulator.helpers import upload, wait_status

    ctls = await emulator_controllers(1)
    fed = await federation(c, ctls, prefix="reset")
    h = fed.heads[0]
    await c.put("/_emulator/faults", json={"app_hang": "*"})
    await upload(ctls[0].url, fed.pid, {"data.csv": b"1,2,3"})
    await wait_status(c, fed.pid, h, {"running"})
    for word in ["ready", "prepare", "finished"]:
        r = await c.put(f"/api/projects/{fed.pid}/", headers=h, json={"status": word})
        assert r.status_code == 409, word
    r = await c.put(f"/api/projects/{fed.pid}/", headers=h, json={"status": "shutdown"})
    assert r.status_code == 200 and r.json()["status"] == "stopped"
    r = await c.put(f"/api/projects/{fed.pid}/", headers=h, json={"status": "prepare"})
    assert r.status_code == 409
    r = await c.put(f"/api/projects/{fed.pid}/", headers=h, json={"status": "ready"})
    assert r.status_code == 200 and r.json()["status"] == "ready"
    await c.put("/_emulator/faults", json={"app_hang": None})
    for final in ["finished", "error"]:
        await c.put("/_emulator/faults", json={"app_fail": "*" if final == "error" else None})
        assert (
            await c.put(f"/api/projects/{fed.pid}/", headers=h, json={"status": "prepare"})
        ).status_code == 200
        await upload(ctls[0].url, fed.pid, {})
        assert await wait_status(c, fed.pid, h, {"finished", "error"}) == final
        r = await c.put(f"/api/projects/{fed.pid}/", headers=h, json={"status": "ready"})
        assert r.status_code == 200


async def test_routing_errors_are_json(c, emulator_controllers):
    r = await c.get("/api/no-such-thing/")
    assert r.status_code == 404 and r.json() == {"detail": "Not found."}
    r = await c.delete("/api/apps/")
    assert r.status_code == 405 and "not allowed" in r.json()["detail"]
    r = await c.post("/api/projects/", content=b"{not json", headers={"Authorization": "x"})
    assert r.status_code == 401
    (ctl,) = await emulator_controllers(1)
    async with httpx.AsyncClient(base_url=ctl.url) as cc:
        r = await cc.get("/nope/")
        assert r.status_code == 404 and r.json()["detail"]


async def test_bad_json_body_is_400(c):
    h = await account(c, "bad@example.org")
    r = await c.post("/api/projects/", content=b"{not json", headers=h)
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
    r = await c.post("/api/projects/", json={"description": "no name"}, headers=h)
    assert r.status_code == 400 and any("name" in d for d in r.json()["detail"])
