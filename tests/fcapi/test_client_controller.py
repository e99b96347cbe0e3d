"""The controller client against emulated controllers over real HTTP on loopback.

A whole mean workflow runs across three emulated sites here, driven by fcapi alone, so that
uploads, finalize, runs and downloads are tested the way the runner uses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from pydantic import SecretStr

from fcapi.controller import ControllerClient
from fcapi.errors import Conflict, NotFound, ProjectFailed, WaitTimeout
from fcapi.website import WebsiteClient
from tests.runner.transport_helpers import free_port

from .conftest import PASSWORD, _serve, admin, new_account

MEAN_SITES = ["1,2,3,4,5\n", "7,9,11\n", "2,2,2,4,6,6,6\n"]
MEAN_CHECK = "5.333333333333333"


async def write_site_info(site_url: str, email: str, data_dir: Path) -> str:
    async with WebsiteClient(site_url, email, SecretStr(PASSWORD), rate=30, burst=10) as c:
        info = await c.get_site()
    (data_dir / "site_info.json").write_text(info.model_dump_json())
    return info.name


@contextlib.asynccontextmanager
async def federation(site, tmp_path: Path, n: int):
    """n accounts, each with its own controller that knows its site."""
    serve = _serve()
    async with contextlib.AsyncExitStack() as stack:
        members = []
        for i in range(n):
            email = await new_account(site.url, f"site{i}")
            data = tmp_path / f"data_fc{i}"
            data.mkdir()
            await write_site_info(site.url, email, data)
            ctl = await stack.enter_async_context(
                serve.running_controller(site.url, data, host="127.0.0.1", port=0)
            )
            web = await stack.enter_async_context(
                WebsiteClient(site.url, email, SecretStr(PASSWORD), rate=30, burst=10)
            )
            con = await stack.enter_async_context(ControllerClient(ctl.url))
            members.append((web, con, data))
        yield members


async def start_mean_project(
    members: list[tuple[WebsiteClient, ControllerClient, Path]], tmp_path: Path, rows=MEAN_SITES
) -> int:
    coord = members[0][0]
    await coord.ensure_in_library(66)
    project = await coord.create_project("mean")
    await coord.set_workflow(project.id, [66])
    for web, _, _ in members[1:]:
        token = await coord.create_token(project.id)
        await web.join(token.token)
    await coord.set_status(project.id, "prepare")
    for i, (_, con, _) in enumerate(members):
        csv = tmp_path / f"in{i}" / "data.csv"
        csv.parent.mkdir()
        csv.write_text(rows[i])
        assert await con.upload(project.id, csv) == len(rows[i])
    for _, con, _ in members:
        await con.finalize(project.id)
    return project.id


async def test_ping_and_a_deadline_that_names_the_site(site, controller):
    async with ControllerClient(controller.url) as con:
        assert await con.ping() is True
        await con.wait_until_up(5, who="site A")
    dead = f"http://127.0.0.1:{free_port()}"
    async with ControllerClient(dead) as con:
        assert await con.ping() is False
        with pytest.raises(WaitTimeout) as info:
            await con.wait_until_up(0.5, who="site B")
    assert "site B" in str(info.value) and dead in str(info.value)


async def test_controller_without_site_info_refuses_with_its_detail(site, controller, tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("1,2\n")
    async with ControllerClient(controller.url) as con:
        with pytest.raises(Conflict) as info:
            await con.upload(1, csv)
    assert "site_info.json" in str(info.value)
    assert "POST /file-upload/" in str(info.value)


async def test_mean_workflow_end_to_end_with_streamed_downloads(site, tmp_path):
    async with federation(site, tmp_path, 3) as members:
        pid = await start_mean_project(members, tmp_path)
        coord, con, _ = members[0]
        done = await coord.wait_for_status(pid, {"finished"}, deadline=60)
        assert done.status == "finished"
        for i, (_, con, _) in enumerate(members):
            runs = await con.project_runs(pid)
            newest = runs[0]
            assert newest.resultSteps, f"site {i} has no result"
            out = tmp_path / f"out{i}"
            out.mkdir()
            zpath = await con.download_result(pid, newest.runNr, newest.resultSteps[0], out)
            assert (
                zpath.name == f"results_pr{pid}_run{newest.runNr}_step{newest.resultSteps[0]}.zip"
            )
            with zipfile.ZipFile(zpath) as zf:
                texts = [zf.read(n).decode() for n in zf.namelist()]
            assert any(MEAN_CHECK in t for t in texts), texts
            if newest.logSteps:
                log = await con.download_log(pid, newest.runNr, newest.logSteps[0], out / "x.log")
                assert log == out / "x.log" and log.stat().st_size > 0
            assert not list(out.glob("*.part")) and not list(out.glob(".*"))
        entries = await members[0][1].logs()
        assert any("finalized" in e.message for e in entries)
        later = await members[0][1].logs(from_line=len(entries))
        assert later == []
        # a running or finished project: a missing step is a NotFound, and leaves no file
        with pytest.raises(NotFound):
            await con.download_result(pid, 99, 1, tmp_path / "missing.zip")
        assert not (tmp_path / "missing.zip").exists()
        assert not list(tmp_path.glob(".missing.zip*"))


async def test_a_failing_app_ends_the_wait_with_project_failed(site, tmp_path):
    await admin(site.url, "PUT", "/_emulator/faults", {"app_fail": "*"})
    async with federation(site, tmp_path, 2) as members:
        pid = await start_mean_project(members, tmp_path)
        with pytest.raises(ProjectFailed) as info:
            await members[0][0].wait_for_status(pid, {"finished"}, deadline=60)
    assert info.value.status in ("error", "failed")
    assert f"project {pid}" in str(info.value)


async def test_uploads_are_refused_while_the_project_runs(site, tmp_path):
    await admin(site.url, "PUT", "/_emulator/faults", {"app_hang": "*"})
    async with federation(site, tmp_path, 2) as members:
        pid = await start_mean_project(members, tmp_path)
        web, con, _ = members[0]
        await web.wait_for_status(pid, {"running"}, deadline=30)
        late = tmp_path / "late.csv"
        late.write_text("1\n")
        with pytest.raises(Conflict, match="running"):
            await con.upload(pid, late)
        stopped = await web.set_status(pid, "stopped")  # asked for as "shutdown"
        assert stopped.status == "stopped"


async def test_a_large_upload_is_streamed_from_disk(site, tmp_path):
    """48 MiB through a separate controller process while this process allocates < 8 MiB."""
    email = await new_account(site.url, "big")
    data = tmp_path / "data_big"
    data.mkdir()
    await write_site_info(site.url, email, data)
    async with WebsiteClient(site.url, email, SecretStr(PASSWORD), rate=30, burst=10) as web:
        await web.ensure_in_library(66)
        project = await web.create_project("big")
        await web.set_workflow(project.id, [66])
        await web.set_status(project.id, "prepare")
    big = tmp_path / "big.bin"
    chunk = bytes(range(256)) * 4096  # 1 MiB
    with big.open("wb") as f:
        for _ in range(48):
            f.write(chunk)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fcapi.emulator",
        "controller",
        "--site-url",
        site.url,
        "--data-dir",
        str(data),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = line.rsplit(" ", 1)[-1].strip()
        async with ControllerClient(url) as con:
            await con.wait_until_up(10, who="big")
            tracemalloc.start()
            try:
                sent = await con.upload(project.id, big, file_name="data.bin")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        proc.terminate()
        await proc.wait()
    assert sent == 48 * len(chunk)
    assert peak < 8 * 1024 * 1024, f"upload allocated {peak} bytes"
    stored = [p for p in data.rglob("data.bin")]
    assert len(stored) == 1
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    assert hashlib.sha256(stored[0].read_bytes()).hexdigest() == digest
