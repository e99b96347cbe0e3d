"""Building blocks for emulator tests: accounts, sites and projects made through the API."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "pw-for-tests"
MEAN_APP = 66
LINREG_APP = 901


async def account(
    c: httpx.AsyncClient, email: str, site_name: str | None = None, data_dir: Path | None = None
) -> dict[str, str]:
    """Sign up and log in; with `site_name`, create the site and write site_info.json."""
    r = await c.post(
        "/api/auth/user/signup/",
        json={
            "email": email,
            "password": PASSWORD,
            "firstName": "F",
            "lastName": "L",
            "role": "user",
        },
    )
    assert r.status_code == 201, r.text
    r = await c.post("/api/auth/login/", json={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    heads = {"Authorization": f"Bearer {r.json()['access']}"}
    if site_name:
        r = await c.post(
            "/api/site/",
            headers=heads,
            json={
                "name": site_name,
                "organization": None,
                "address": None,
                "zip": None,
                "city": None,
                "country": None,
                "firstName": None,
                "lastName": None,
                "phone": None,
            },
        )
        assert r.status_code == 201, r.text
        if data_dir is not None:
            r = await c.get("/api/site/", headers=heads)
            data_dir.mkdir(parents=True, exist_ok=True)
            (data_dir / "site_info.json").write_text(r.text)
    return heads


def workflow_body(pid: int, app_id: int) -> dict[str, Any]:
    return {
        "id": pid,
        "name": "p",
        "description": "",
        "status": "ready",
        "workflow": [
            {
                "id": 0,
                "projectId": pid,
                "federatedApp": {"id": app_id},
                "order": 0,
                "versionCertificationLevel": 1,
            }
        ],
    }


@dataclass
class Federation:
    pid: int
    heads: list[dict[str, str]]
    controllers: list[str] = field(default_factory=list)


async def federation(
    c: httpx.AsyncClient,
    controllers: list[Any],
    app_id: int = MEAN_APP,
    prefix: str = "fed",
    prepare: bool = True,
) -> Federation:
    """n users with sites (site_info written), one project, all joined, optionally prepared."""
    heads = [
        await account(c, f"{prefix}{i}@example.org", f"{prefix}-site{i}", ctl.data_dir)
        for i, ctl in enumerate(controllers)
    ]
    assert (await c.post(f"/api/apps/{app_id}/purchase/", headers=heads[0])).status_code == 201
    r = await c.post(
        "/api/projects/", headers=heads[0], json={"name": "p", "description": "", "status": ""}
    )
    pid = r.json()["id"]
    r = await c.put(f"/api/projects/{pid}/", headers=heads[0], json=workflow_body(pid, app_id))
    assert r.status_code == 200, r.text
    for h in heads[1:]:
        t = (
            await c.post(f"/api/project-tokens/{pid}/", headers=heads[0], json={"cmd": "create"})
        ).json()
        r = await c.post(
            "/api/project-tokens/", headers=h, json={"token": t["token"], "cmd": "join"}
        )
        assert r.status_code == 201, r.text
    if prepare:
        r = await c.put(f"/api/projects/{pid}/", headers=heads[0], json={"status": "prepare"})
        assert r.status_code == 200, r.text
    return Federation(pid, heads, [ctl.url for ctl in controllers])


async def upload(ctl_url: str, pid: int, files: dict[str, bytes], finalize: bool = True) -> None:
    async with httpx.AsyncClient(base_url=ctl_url, timeout=30) as cc:
        for name, content in files.items():
            r = await cc.post(
                "/file-upload/",
                content=content,
                params={"projectId": pid, "fileName": name, "finalize": "", "consent": ""},
                headers={"Origin": "https://featurecloud.ai"},
            )
            assert r.status_code == 200, r.text
        if finalize:
            r = await cc.post(
                "/file-upload/",
                content=b"",
                params={"projectId": pid, "fileName": "", "finalize": "true", "consent": ""},
            )
            assert r.status_code == 200, r.text


async def wait_status(
    c: httpx.AsyncClient, pid: int, heads: dict[str, str], wanted: set[str], deadline: float = 20.0
) -> str:
    """Poll the project with backoff until its status is in `wanted` (or fail at the deadline)."""
    end = time.monotonic() + deadline
    delay = 0.01
    status: str | None = None
    while time.monotonic() < end:
        status = (await c.get(f"/api/projects/{pid}/", headers=heads)).json()["status"]
        if status in wanted:
            return status
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise AssertionError(f"project {pid} stayed {status!r}, wanted {wanted}")


async def result_files(ctl_url: str, pid: int) -> dict[str, bytes]:
    """The newest run's step-1 result zip of a controller, as {name: bytes}."""
    import io
    import zipfile

    async with httpx.AsyncClient(base_url=ctl_url) as cc:
        runs = (await cc.get("/project-runs/", params={"projectId": pid})).json()
        newest = runs[0]
        r = await cc.get(
            "/file-download/",
            params={"projectId": pid, "step": newest["resultSteps"][0], "run": newest["runNr"]},
        )
        assert r.status_code == 200, r.text
        zf = zipfile.ZipFile(io.BytesIO(r.content))
        return {n: zf.read(n) for n in zf.namelist()}
