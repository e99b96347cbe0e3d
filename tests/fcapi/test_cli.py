"""`python -m fcapi` end to end against the emulator: fedflow's workflow, exit codes, output."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

from fcapi.cli import amain
from fcapi.errors import ExitCode

from .conftest import PASSWORD, _serve, new_email


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)


async def fc(*argv: str, stdin: str = "", err: io.StringIO | None = None) -> Result:
    out, err = io.StringIO(), err or io.StringIO()
    code = await amain(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return Result(code, out.getvalue(), err.getvalue())


async def fc_process(*argv: str, env: dict[str, str] | None = None) -> Result:
    """The real entry point in its own process (argv, exit status, streams)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fcapi",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@pytest.fixture
def env_file(tmp_path):
    """fedflow's .env: one USER=PASSWORD line per account, mode 0600."""
    users = [new_email("cli") for _ in range(3)]
    path = tmp_path / ".env"
    path.write_text("".join(f"{u}={PASSWORD}\n" for u in users))
    path.chmod(0o600)
    return path, users


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("fcapi: error:")]
    assert len(lines) == 1, err
    return lines[0]


async def test_fedflow_workflow_from_signup_to_download(site, tmp_path, env_file):
    envf, (coord, p1, p2) = env_file
    base = ["--website-url", site.url, "--env-file", str(envf)]
    # signup: the password from stdin for one, from the .env file for the others
    r = await fc(
        *base,
        "signup",
        "--email",
        coord,
        "--site-name",
        "coord",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert r.code == 0, r.err
    assert "coord" in r.out
    for user in (p1, p2):
        r = await fc(*base, "signup", "--email", user, "--first-name", "P")
        assert r.code == 0, r.err

    r = await fc(*base, "--json", "list-apps")
    assert {a["slug"]: a["id"] for a in r.json()}["mean-app"] == 66

    r = await fc(*base, "create", "-u", coord, "-t", "mean-app", "-n", "2", "--json")
    assert r.code == 0, r.err
    created = r.json()
    pid, tokens = created["project"], created["tokens"]
    assert created["status"] == "ready" and len(tokens) == 2
    # fedflow's text output is still there without --json
    assert (await fc(*base, "-u", coord, "query", "-p", str(pid))).out.strip() == "ready"

    r = await fc(*base, "join", "-u", p1, "-t", tokens[0])
    assert r.code == 0 and f"joined project {pid}" in r.out, r.err
    r = await fc(*base, "join", "-u", p2, "--token-stdin", "-p", str(pid), stdin=tokens[1] + "\n")
    assert r.code == 0, r.err

    r = await fc(*base, "prep", "-u", p1, "-p", str(pid))
    assert r.code == ExitCode.PERMISSION
    assert "refused" in one_line(r.err) and p1 in r.err

    serve = _serve()
    rows = {coord: "1,2,3,4,5\n", p1: "7,9,11\n", p2: "2,2,2,4,6,6,6\n"}
    async with (
        serve.running_controller(site.url, tmp_path / "d0") as c0,
        serve.running_controller(site.url, tmp_path / "d1") as c1,
        serve.running_controller(site.url, tmp_path / "d2") as c2,
    ):
        urls = {coord: c0.url, p1: c1.url, p2: c2.url}
        dirs = {coord: tmp_path / "d0", p1: tmp_path / "d1", p2: tmp_path / "d2"}

        async def contribute(user, err=None):
            data = tmp_path / user / "data.csv"
            data.parent.mkdir()
            data.write_text(rows[user])
            return await fc(
                *base,
                "--controller-url",
                urls[user],
                "contribute",
                "-u",
                user,
                "-p",
                str(pid),
                "-d",
                str(data),
                "--data-dir",
                str(dirs[user]),
                err=err,
            )

        # participants start first and wait for the coordinator to open uploads
        errs = {u: io.StringIO() for u in (p1, p2)}
        waiting = [asyncio.create_task(contribute(u, errs[u])) for u in (p1, p2)]
        for _ in range(200):  # until both say they wait (bounded: 10 s)
            if all("waiting for the coordinator" in e.getvalue() for e in errs.values()):
                break
            await asyncio.sleep(0.05)
        r = await contribute(coord)
        assert r.code == 0, r.err
        for result in await asyncio.gather(*waiting):
            assert result.code == 0, result.err
            assert "waiting for the coordinator to set 'prepare'" in result.err
        assert (dirs[p1] / "site_info.json").stat().st_mode & 0o077 == 0

        r = await fc(*base, "monitor", "-u", coord, "-p", str(pid), "-t", "60", "--json")
        assert r.code == 0, r.err
        assert r.json()["status"] == "finished"

        out = tmp_path / "results"
        r = await fc(
            *base,
            "--controller-url",
            urls[p2],
            "download",
            "-u",
            p2,
            "-p",
            str(pid),
            "-o",
            str(out),
            "--json",
        )
        assert r.code == 0, r.err
        files = [Path(f) for f in r.json()["files"]]
        zips = [f for f in files if f.suffix == ".zip"]
        assert zips and all(f.exists() for f in files)
        with zipfile.ZipFile(zips[0]) as zf:
            assert any("5.333333333333333" in zf.read(n).decode() for n in zf.namelist())

    r = await fc(*base, "reset", "-u", coord, "-p", str(pid))
    assert r.code == 0 and r.out.strip() == f"project {pid}: ready", r.err


async def test_monitor_timeout_says_what_it_waited_for(site, env_file):
    envf, (coord, _, _) = env_file
    base = ["--website-url", site.url, "--env-file", str(envf), "-u", coord]
    assert (await fc(*base, "signup", "--email", coord)).code == 0
    r = await fc(*base, "create", "-t", "mean-app", "--json")
    pid = r.json()["project"]
    r = await fc(*base, "monitor", "-p", str(pid), "-t", "0.5")
    assert r.code == ExitCode.TIMEOUT
    line = one_line(r.err)
    assert f"project {pid}" in line and "'finished'" in line and "'ready'" in line
    assert "waiting for the project to finish" in r.err  # progress while it waited


async def test_failures_have_their_own_exit_codes_and_one_line(site, env_file, tmp_path):
    envf, (user, _, _) = env_file
    base = ["--website-url", site.url, "--env-file", str(envf)]
    assert (await fc(*base, "signup", "--email", user)).code == 0

    r = await fc(*base, "query", "-u", user, "-p", "424242")
    assert r.code == ExitCode.NOT_FOUND and "not found" in one_line(r.err)

    r = await fc(*base, "query", "-u", "nobody@example.org", "-p", "1")
    assert r.code == ExitCode.AUTH
    assert "nobody@example.org" in one_line(r.err) and str(envf) in r.err

    wrong = tmp_path / "wrong.env"
    wrong.write_text(f"{user}=not-the-password\n")
    wrong.chmod(0o600)
    r = await fc(
        "--website-url", site.url, "--env-file", str(wrong), "query", "-u", user, "-p", "1"
    )
    assert r.code == ExitCode.AUTH and "not-the-password" not in r.err + r.out

    r = await fc(*base, "query", "-p", "1")
    assert r.code == ExitCode.USAGE and "FC_USER" in r.err

    r = await fc(*base, "contribute", "-u", user, "-p", "1", "-d", str(tmp_path / "nope.csv"))
    assert r.code == ExitCode.USAGE and "nope.csv" in one_line(r.err)

    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    r = await fc("--website-url", dead, "--env-file", str(envf), "query", "-u", user, "-p", "1")
    assert r.code == ExitCode.TRANSPORT and dead in one_line(r.err)


async def test_group_readable_env_file_warns_on_stderr(site, env_file):
    envf, (user, _, _) = env_file
    envf.chmod(0o644)
    r = await fc("--website-url", site.url, "--env-file", str(envf), "list-apps")
    assert r.code == 0
    assert "fcapi: warning:" not in r.err  # list-apps reads no password file
    r = await fc("--website-url", site.url, "--env-file", str(envf), "query", "-u", user, "-p", "1")
    assert "fcapi: warning:" in r.err and "chmod 600" in r.err


async def test_the_real_entry_point_takes_urls_and_user_from_the_environment(site, env_file):
    envf, (user, _, _) = env_file
    assert (
        await fc("--website-url", site.url, "--env-file", str(envf), "signup", "--email", user)
    ).code == 0
    env = {"FCAPI_WEBSITE_URL": site.url, "FC_USER": user}
    r = await fc_process("--env-file", str(envf), "--json", "list-apps", env=env)
    assert r.code == 0, r.err
    assert any(a["slug"] == "mean-app" for a in json.loads(r.out))
    r = await fc_process("query", "-p", "31337", "--env-file", str(envf), env=env)
    assert r.code == ExitCode.NOT_FOUND
    assert r.err.count("\n") == 1 and r.err.startswith("fcapi: error:")


async def test_passwords_are_refused_on_the_command_line():
    r = await fc_process("signup", "--email", "a@example.org", "--password", "hunter2")
    assert r.code == ExitCode.USAGE
    assert "never taken on the command line" in r.err and "hunter2" not in r.err
    r = await fc_process("signup", "--email", "a@example.org", "--password=hunter2")
    assert r.code == ExitCode.USAGE and "hunter2" not in r.err
