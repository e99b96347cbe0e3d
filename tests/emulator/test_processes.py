"""The emulator as processes: `python -m fcapi.emulator ... --port 0`, restarts, memory."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from tests.emulator.helpers import account, federation, upload, workflow_body

UPLOAD_MB = 200


class Proc:
    """A started emulator process and the URL from its first stdout line."""

    def __init__(self, *args: str) -> None:
        t0 = time.monotonic()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "fcapi.emulator", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], 15)
        assert ready, "no first line within 15 s"
        self.first_line = self.popen.stdout.readline().strip()
        self.startup = time.monotonic() - t0
        self.url = self.first_line.rsplit(" ", 1)[-1]

    def status(self, key: str) -> int:
        """A VmRSS/VmHWM figure of the process, in kB."""
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=15)


@pytest.fixture
def procs():
    started: list[Proc] = []

    def start(*args: str) -> Proc:
        p = Proc(*args)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.popen.poll() is None:
            p.popen.kill()
            p.popen.wait()
        assert p.popen.stdout is not None and p.popen.stderr is not None
        p.popen.stdout.close()
        p.popen.stderr.close()


async def test_site_state_survives_restart(procs, tmp_path):
    state = tmp_path / "site-state.json"
    site = procs("site", "--host", "127.0.0.1", "--port", "0", "--state", str(state))
    assert site.first_line.startswith("fcapi-emulator site listening on http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=site.url) as c:
        h = await account(c, "keep@example.org", "keep-site")
        await c.post("/api/apps/66/purchase/", headers=h)
        pid = (
            await c.post(
                "/api/projects/", headers=h, json={"name": "kept", "description": "", "status": ""}
            )
        ).json()["id"]
        await c.put(f"/api/projects/{pid}/", headers=h, json=workflow_body(pid, 66))
        token = (
            await c.post(f"/api/project-tokens/{pid}/", headers=h, json={"cmd": "create"})
        ).json()
        site_before = (await c.get("/api/site/", headers=h)).json()
    assert site.stop() == 0
    assert state.stat().st_mode & 0o777 == 0o600
    again = procs("site", "--port", "0", "--state", str(state))
    async with httpx.AsyncClient(base_url=again.url) as c:
        # the access token issued before the restart is still valid (same secret)
        project = (await c.get(f"/api/projects/{pid}/", headers=h)).json()
        assert project["status"] == "ready" and project["name"] == "p"  # renamed by the PUT
        r = await c.post(
            "/api/auth/login/", json={"username": "keep@example.org", "password": "pw-for-tests"}
        )
        assert r.status_code == 200
        assert (await c.get("/api/site/", headers=h)).json() == site_before
        assert [a["id"] for a in (await c.get("/api/apps/purchase/", headers=h)).json()] == [66]
        listed = (await c.get(f"/api/project-tokens/{pid}/", headers=h)).json()
        assert [t["token"] for t in listed] == [token["token"]]
        new = await c.post(
            "/api/projects/", headers=h, json={"name": "n", "description": "", "status": ""}
        )
        assert new.json()["id"] == pid + 1


async def test_controller_process_startup_rss_and_large_streamed_upload(
    procs, emulator_site, tmp_path
):
    data_dir = tmp_path / "ctl"
    pid_file = tmp_path / "ctl.pid"
    ctl = procs(
        "controller",
        "--site-url",
        emulator_site.url,
        "--data-dir",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--pid-file",
        str(pid_file),
    )
    assert ctl.first_line.startswith("fcapi-emulator controller listening on http://127.0.0.1:")
    assert pid_file.read_text().strip() == str(ctl.popen.pid)
    rss_start = ctl.status("VmRSS")
    print(f"\ncontroller startup {ctl.startup:.2f} s to first line, RSS {rss_start / 1024:.1f} MB")
    assert ctl.startup < 5 and rss_start < 120 * 1024

    class Ctl:
        url = ctl.url
        data_dir: ClassVar[Path]

    Ctl.data_dir = data_dir
    async with httpx.AsyncClient(base_url=emulator_site.url) as c:
        fed = await federation(c, [Ctl], prefix="big")
    chunk = b"0123456789abcdef" * 65536  # 1 MiB, reused: the test holds no 200 MB either

    async def body():
        for _ in range(UPLOAD_MB):
            yield chunk

    before = ctl.status("VmRSS")
    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=ctl.url, timeout=120) as cc:
        r = await cc.post(
            "/file-upload/",
            content=body(),
            params={"projectId": fed.pid, "fileName": "big.bin", "finalize": "", "consent": ""},
        )
    seconds = time.monotonic() - t0
    assert r.status_code == 200 and r.json()["size"] == UPLOAD_MB * 2**20
    stored = data_dir / "uploads" / f"Project_{fed.pid}" / "big.bin"
    assert stored.stat().st_size == UPLOAD_MB * 2**20
    peak = ctl.status("VmHWM")
    print(
        f"{UPLOAD_MB} MB upload in {seconds:.1f} s; RSS before {before / 1024:.1f} MB, "
        f"peak {peak / 1024:.1f} MB"
    )
    assert peak - before < 40 * 1024, "the controller held the upload in memory"
    stored.unlink()
    assert ctl.stop() == 0
    assert not pid_file.exists()


async def test_controller_process_dies_mid_run(procs, emulator_site, tmp_path):
    class Ctl:
        data_dir = tmp_path / "dying"
        url: ClassVar[str]

    ctl = procs(
        "controller",
        "--site-url",
        emulator_site.url,
        "--data-dir",
        str(Ctl.data_dir),
        "--port",
        "0",
        "--die-mid-run",
        "dies-site0",
    )
    Ctl.url = ctl.url
    async with httpx.AsyncClient(base_url=emulator_site.url) as c:
        fed = await federation(c, [Ctl], prefix="dies")
        await upload(ctl.url, fed.pid, {"data.csv": b"1,2"})
        code = await asyncio.to_thread(ctl.popen.wait, 15)
        assert code == 17 and "die_mid_run" in ctl.popen.stderr.read()
        project = (await c.get(f"/api/projects/{fed.pid}/", headers=fed.heads[0])).json()
        assert project["status"] == "running"


def _fedflow_like(
    site_url: str, ctl_urls: list[str], data_dirs: list[Path], rows: list[str], out_dir: Path
) -> str:
    """The request sequence of fedflow's featurecloud_api.py (sync httpx, same bodies)."""
    headers = {"User-Agent": "fedsim (https://github.com/W-L/FedSim)"}
    users = []
    for i, d in enumerate(data_dirs):
        email = f"ff{i}@example.org"
        httpx.post(
            f"{site_url}/api/auth/user/signup/",
            json={
                "email": email,
                "password": "pw-ff",
                "firstName": "",
                "lastName": "",
                "role": "user",
            },
        )
        client = httpx.Client(base_url=site_url, headers=headers)
        r = client.post("/api/auth/login/", json={"username": email, "password": "pw-ff"})
        r.raise_for_status()
        client.headers["Authorization"] = f"Bearer {r.json()['access']}"
        assert client.get("/api/user/info/").status_code == 200
        client.post(
            "/api/site/", json={"name": f"ff-site{i}", "organization": None}
        ).raise_for_status()
        r = client.get("/api/site/")
        r.raise_for_status()
        (d / "site_info.json").write_text(r.text)  # after the controller started, as fedflow does
        users.append(client)
    coord = users[0]
    apps = {a["slug"]: a["id"] for a in httpx.get(f"{site_url}/api/apps/", headers=headers).json()}
    owned = {a["slug"]: a["id"] for a in coord.get("/api/apps/purchase/").json()}
    if apps["mean-app"] not in owned.values():
        coord.post(f"/api/apps/{apps['mean-app']}/purchase/").raise_for_status()
    r = coord.post("/api/projects/", json={"name": "ffproj", "description": "", "status": ""})
    r.raise_for_status()
    pid = r.json().get("id")
    coord.put(
        f"/api/projects/{pid}/",
        json={
            "id": pid,
            "name": "ffproj",
            "description": "",
            "status": "ready",
            "workflow": [
                {
                    "id": 0,
                    "projectId": pid,
                    "federatedApp": {"id": apps["mean-app"]},
                    "order": 0,
                    "versionCertificationLevel": 1,
                }
            ],
        },
    ).raise_for_status()
    tokens = []
    for _ in users[1:]:
        r = coord.post(f"/api/project-tokens/{pid}/", json={"cmd": "create"})
        r.raise_for_status()
        tokens.append(r.json()["token"])
    for user, token in zip(users[1:], tokens, strict=True):
        user.post("/api/project-tokens/", json={"token": token, "cmd": "join"}).raise_for_status()
        assert user.get(f"/api/projects/{pid}/").json().get("status") == "ready"
    upload_headers = {
        "Origin": "https://featurecloud.ai",
        "Accept": "application/json, text/plain, */*",
    }
    for i, (user, ctl_url, row) in enumerate(zip(users, ctl_urls, rows, strict=True)):
        controller = httpx.Client(base_url=ctl_url)
        assert controller.get(f"{ctl_url}/ping/", timeout=2).status_code == 200
        status = user.get(f"/api/projects/{pid}/").json().get("status")
        if status != "prepare":
            assert i == 0 and user.get(f"/api/projects/{pid}/").json().get("role") == "coordinator"
            user.put(f"/api/projects/{pid}/", json={"status": "prepare"}).raise_for_status()
        src = out_dir / f"in{i}" / "data.csv"
        src.parent.mkdir(parents=True)
        src.write_text(row)
        params = {"projectId": pid, "fileName": src.name, "finalize": "", "consent": ""}
        r = controller.post(
            "/file-upload/", params=params, content=src.read_bytes(), headers=upload_headers
        )
        r.raise_for_status()
        assert r.text
        params = {"projectId": pid, "fileName": "", "finalize": "true", "consent": ""}
        controller.post(
            "/file-upload/", params=params, headers=upload_headers, content=b""
        ).raise_for_status()
    deadline = time.monotonic() + 20
    while (status := coord.get(f"/api/projects/{pid}/").json().get("status")) in {
        "prepare",
        "running",
    }:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status == "finished"
    controller = httpx.Client(base_url=ctl_urls[2])
    runs = controller.get("/project-runs/", params={"projectId": pid}).json()
    newest = runs[0]
    assert newest["startedOn"]
    for step in newest.get("logSteps", []):
        r = controller.get(
            "/logs-download/", params={"projectId": pid, "step": step, "run": newest["runNr"]}
        )
        r.raise_for_status()
    import io
    import zipfile

    for step in newest.get("resultSteps", []):
        r = controller.get(
            "/file-download/", params={"projectId": pid, "step": step, "run": newest["runNr"]}
        )
        r.raise_for_status()
        return zipfile.ZipFile(io.BytesIO(r.content)).read("output.csv").decode()
    raise AssertionError("no result step")


async def test_fedflow_request_sequence_works_unchanged(
    emulator_site, emulator_controllers, tmp_path
):
    ctls = await emulator_controllers(3)
    rows = [
        "52,49,26,77,23,30,32,18,98,12",
        "33,94,50,68,88,90,69,12,80,63",
        "26,54,93,79,76,28,48,50,88,20",
    ]
    for ctl in ctls:
        ctl.data_dir.mkdir(parents=True, exist_ok=True)
    result = await asyncio.to_thread(
        _fedflow_like,
        emulator_site.url,
        [c.url for c in ctls],
        [c.data_dir for c in ctls],
        rows,
        tmp_path,
    )
    assert result == "54.20000000000001"
    os.sync()


def test_unreadable_state_file_is_one_clear_line(tmp_path):
    bad = tmp_path / "state.json"
    bad.write_text('{"users": 5}')
    done = subprocess.run(
        [sys.executable, "-m", "fcapi.emulator", "site", "--port", "0", "--state", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().startswith("fcapi-emulator site: cannot read the state file")
    assert len(done.stderr.strip().splitlines()) == 1


async def test_fault_flags_on_the_command_line(procs):
    site = procs(
        "site",
        "--port",
        "0",
        "--burst-429",
        "2",
        "--retry-after",
        "1.5",
        "--latency-ms",
        "1",
        "--error-rate",
        "0",
        "--access-lifetime",
        "42",
        "--app-hang",
        "siteX",
        "--seed",
        "9",
    )
    async with httpx.AsyncClient(base_url=site.url) as c:
        faults = (await c.get("/_emulator/faults")).json()
        assert faults["access_lifetime"] == 42 and faults["app_hang"] == "siteX"
        assert faults["seed"] == 9 and faults["latency_ms"] == 1
        codes = [(await c.get("/api/apps/")).status_code for _ in range(3)]
        assert codes == [429, 429, 200]
