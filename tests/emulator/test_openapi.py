"""The OpenAPI document of the FeatureCloud API: committed, served, and in step with the routes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from fcapi.emulator.faults import Faults, FaultState
from fcapi.emulator.openapi import render
from fcapi.emulator.site_context import SiteContext
from fcapi.emulator.site_server import build_site_app

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "featurecloud-openapi.json"
REGENERATE = "python -m fcapi.emulator openapi > docs/featurecloud-openapi.json"

#: reference/featurecloud.md §1: the table, then the calls "also seen in older code"
REFERENCE = {
    ("post", "/api/auth/login/"),
    ("post", "/api/auth/token/refresh/"),
    ("get", "/api/user/info/"),
    ("get", "/api/site/"),
    ("post", "/api/site/"),
    ("post", "/api/auth/user/signup/"),
    ("get", "/api/apps/"),
    ("get", "/api/apps/purchase/"),
    ("post", "/api/apps/{app_id}/purchase/"),
    ("delete", "/api/apps/{app_id}/purchase/"),
    ("post", "/api/projects/"),
    ("put", "/api/projects/{id}/"),
    ("get", "/api/projects/{id}/"),
    ("post", "/api/project-tokens/{project_id}/"),
    ("post", "/api/project-tokens/"),
    ("get", "/api/projects/"),
    ("delete", "/api/projects/{id}/"),
    ("get", "/api/project-tokens/{project_id}/"),
    ("delete", "/api/project-tokens/token/{id}/"),
    ("post", "/api/auth/logout/"),
}


def _generated() -> str:
    return render(build_site_app(SiteContext(None, FaultState(Faults()))))


def test_committed_document_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == _generated(), (
        f"{COMMITTED.name} is out of date with the emulator's routes: regenerate it with "
        f"`{REGENERATE}` and commit it"
    )


def test_cli_prints_the_document() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fcapi.emulator", "openapi"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == _generated()


def test_document_covers_the_reference_api_and_nothing_of_the_emulator() -> None:
    doc = json.loads(_generated())
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert documented == REFERENCE
    assert not any("_emulator" in path for path in doc["paths"])
    login = doc["paths"]["/api/auth/login/"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LoginRequest"
    }
    schemas = doc["components"]["schemas"]
    assert {"LoginRequest", "TokenPair", "ProjectUpdate", "WorkflowStep", "Site"} <= set(schemas)
    # bad parameters are answered 400 with {"detail": ...}, never FastAPI's 422
    assert all(
        "422" not in op["responses"] for item in doc["paths"].values() for op in item.values()
    )


async def test_site_serves_the_document_and_its_page_uncounted(emulator_site) -> None:
    async with httpx.AsyncClient(base_url=emulator_site.url, timeout=10) as c:
        await c.delete("/_emulator/requests")
        served = await c.get("/openapi.json")
        assert served.status_code == 200
        assert served.json() == json.loads(COMMITTED.read_text())
        page = await c.get("/docs")
        assert page.status_code == 200 and "/openapi.json" in page.text
        assert (await c.get("/_emulator/requests")).json()["total"] == 0
