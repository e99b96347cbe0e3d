"""Bad input to `python -m fcapi` and to the emulator's HTTP API.

The CLI: one line on stderr naming what and where, the exit code of its kind, no traceback,
no project made and no file left in the working folder. The emulator: a 400 with a detail
where a malformed body used to be a 500. One website (and one controller) per module.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fcapi.cli import PROG, main
from tests.emulator_process import emulator_process

USER = "bad-inputs@fedstack.example"


@dataclass
class World:
    site: str
    controller: str
    password: str
    token: str

    def projects(self) -> int:
        r = httpx.get(
            f"{self.site}/api/projects/", headers={"Authorization": f"Bearer {self.token}"}
        )
        r.raise_for_status()
        return len(r.json())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("controller")
    password = secrets.token_hex(12)
    with emulator_process("site") as site:
        signup = {"email": USER, "password": password, "firstName": "", "lastName": ""}
        httpx.post(f"{site}/api/auth/user/signup/", json=signup).raise_for_status()
        login = httpx.post(f"{site}/api/auth/login/", json={"username": USER, "password": password})
        token = login.json()["access"]
        with emulator_process("controller", "--site-url", site, "--data-dir", str(data)) as ctl:
            yield World(site, ctl, password, token)


Args = Callable[[World, Path], list[str]]


def env_file(tmp: Path, body: bytes, mode: int = 0o600) -> Path:
    path = tmp / "pw.env"
    path.write_bytes(body)
    path.chmod(mode)
    return path


def fifo(tmp: Path) -> Path:
    path = tmp / "pw.env"
    os.mkfifo(path)
    return path


def folder(tmp: Path) -> Path:
    path = tmp / "pw.env"
    path.mkdir()
    return path


def with_env(path: Path, *args: str) -> list[str]:
    return ["query", "-p", "1", "--env-file", str(path), *args]


def data_file(tmp: Path, name: str) -> str:
    path = tmp / name
    path.write_text("x\n")
    return str(path)


# (id, argv (after the common options), a fragment of the one line, exit code)
CASES: list[tuple[str, Args, str, int]] = [
    ("rate-zero", lambda w, t: ["--rate", "0", "list-apps"], "--rate", 2),
    ("rate-negative", lambda w, t: ["--rate", "-1", "list-apps"], "--rate", 2),
    ("rate-nan", lambda w, t: ["--rate", "nan", "list-apps"], "--rate", 2),
    ("rate-inf", lambda w, t: ["--rate", "inf", "list-apps"], "--rate", 2),
    ("rate-word", lambda w, t: ["--rate", "fast", "list-apps"], "--rate", 2),
    ("rate-after-command", lambda w, t: ["list-apps", "--rate", "0"], "--rate", 2),
    ("burst-zero", lambda w, t: ["--burst", "0", "list-apps"], "--burst", 2),
    ("burst-negative", lambda w, t: ["--burst", "-2", "list-apps"], "--burst", 2),
    ("burst-float", lambda w, t: ["--burst", "1.5", "list-apps"], "--burst", 2),
    ("monitor-timeout-negative", lambda w, t: ["monitor", "-p", "1", "-t", "-5"], "-t", 2),
    ("monitor-timeout-zero", lambda w, t: ["monitor", "-p", "1", "-t", "0"], "-t", 2),
    ("monitor-timeout-nan", lambda w, t: ["monitor", "-p", "1", "-t", "nan"], "-t", 2),
    ("monitor-timeout-inf", lambda w, t: ["monitor", "-p", "1", "-t", "inf"], "-t", 2),
    ("reset-timeout-negative", lambda w, t: ["reset", "-p", "1", "--timeout", "-1"], "timeout", 2),
    (
        "contribute-timeout-nan",
        lambda w, t: ["contribute", "-p", "1", "-d", "x", "--timeout", "nan"],
        "timeout",
        2,
    ),
    ("project-zero", lambda w, t: ["query", "-p", "0"], "-p", 2),
    ("project-negative", lambda w, t: ["query", "-p", "-3"], "-p", 2),
    ("project-word", lambda w, t: ["query", "-p", "one"], "-p", 2),
    ("project-huge", lambda w, t: ["query", "-p", "9" * 30], "-p", 2),
    ("project-missing", lambda w, t: ["query"], "-p", 2),
    ("join-project-zero", lambda w, t: ["join", "-t", "x", "-p", "0"], "-p", 2),
    ("download-run-zero", lambda w, t: ["download", "-p", "1", "--run", "0"], "--run", 2),
    ("create-num-negative", lambda w, t: ["create", "-t", "mean-app", "-n", "-1"], "-n", 2),
    ("create-num-huge", lambda w, t: ["create", "-t", "mean-app", "-n", "100000"], "-n", 2),
    ("create-slug-10mb", lambda w, t: ["create", "-t", "a" * 10_000_000], "app slug", 2),
    ("create-slug-newline", lambda w, t: ["create", "-t", "mean-app\n"], "app slug", 2),
    ("create-slug-empty", lambda w, t: ["create", "-t", ""], "app slug", 2),
    (
        "signup-email-5mb",
        lambda w, t: ["signup", "--email", "a" * 5_000_000 + "@x.org"],
        "e-mail",
        2,
    ),
    ("signup-email-no-at", lambda w, t: ["signup", "--email", "nobody"], "e-mail", 2),
    ("signup-email-space", lambda w, t: ["signup", "--email", "a b@x.org"], "e-mail", 2),
    ("signup-email-newline", lambda w, t: ["signup", "--email", "a@x.org\n"], "e-mail", 2),
    ("user-not-email", lambda w, t: ["-u", "alice", "query", "-p", "1"], "e-mail", 2),
    ("user-5mb", lambda w, t: ["-u", "a" * 5_000_000 + "@x", "query", "-p", "1"], "e-mail", 2),
    ("website-url-ftp", lambda w, t: ["--website-url", "ftp://x", "list-apps"], "http(s)", 2),
    ("website-url-word", lambda w, t: ["--website-url", "nowhere", "list-apps"], "http(s)", 2),
    ("website-url-port", lambda w, t: ["--website-url", "http://h:99999", "list-apps"], "port", 2),
    (
        "controller-url-bad",
        lambda w, t: ["--controller-url", "x", "download", "-p", "1"],
        "http",
        2,
    ),
    ("unknown-command", lambda w, t: ["frobnicate"], "invalid choice", 2),
    ("unknown-option", lambda w, t: ["query", "-p", "1", "--bogus"], "unrecognized", 2),
    ("password-on-argv", lambda w, t: ["--password", "x", "query", "-p", "1"], "never taken", 2),
    ("env-file-folder", lambda w, t: with_env(folder(t)), "is a folder", 2),
    ("env-file-fifo", lambda w, t: with_env(fifo(t)), "not a regular file", 2),
    ("env-file-device", lambda w, t: with_env(Path("/dev/zero")), "not a regular file", 2),
    ("env-file-not-utf8", lambda w, t: with_env(env_file(t, b"\xff\xfe=x\n")), "not UTF-8", 2),
    ("env-file-unreadable", lambda w, t: with_env(Path("/proc/self/mem")), "cannot read it", 2),
    ("env-file-missing", lambda w, t: with_env(t / "none.env"), "does not exist", 2),
    (
        "contribute-name-newline",
        lambda w, t: ["contribute", "-p", "1", "-d", data_file(t, "da\nta.csv")],
        "plain file names",
        2,
    ),
    (
        "contribute-missing-file",
        lambda w, t: ["contribute", "-p", "1", "-d", str(t / "none.csv")],
        "no such data file",
        2,
    ),
    ("query-nonexistent", lambda w, t: ["query", "-p", "999999"], "999999", 5),
    ("prep-nonexistent", lambda w, t: ["prep", "-p", "888888"], "888888", 5),
    ("create-unknown-app", lambda w, t: ["create", "-t", "no-such-app"], "no-such-app", 5),
    (
        "wrong-password",
        lambda w, t: [
            "query",
            "-p",
            "1",
            "--env-file",
            str(env_file(t, f"{USER}=nope\n".encode())),
        ],
        "credentials",
        3,
    ),
    ("no-user", lambda w, t: ["-u", "nobody@x.org", "query", "-p", "1"], "nobody@x.org", 3),
]


@pytest.mark.parametrize(
    ("args", "fragment", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_and_its_exit_code(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: Args,
    fragment: str,
    code: int,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(USER, world.password)
    monkeypatch.setenv("FC_USER", USER)
    monkeypatch.delenv("FC_PASSWORD", raising=False)
    argv = [
        "--website-url",
        world.site,
        "--controller-url",
        world.controller,
        *args(world, tmp_path),
    ]
    before_files = sorted(os.listdir(tmp_path))
    before = world.projects()
    capsys.readouterr()
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err[:2000]
    assert lines[0].startswith(f"{PROG}: error: "), err[:2000]
    assert fragment in lines[0], err[:2000]
    assert len(lines[0]) < 1000
    assert sorted(os.listdir(tmp_path)) == before_files
    assert world.projects() == before


def test_a_readable_env_file_is_one_warning_line(world: World, tmp_path: Path) -> None:
    env = env_file(tmp_path, f"{USER}=nope\n".encode(), 0o644)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fcapi",
            "--website-url",
            world.site,
            "-u",
            USER,
            "--env-file",
            str(env),
            "query",
            "-p",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if "@" not in k},
    )
    lines = done.stderr.splitlines()
    assert done.returncode == 3, done.stderr
    assert len(lines) == 2 and "chmod 600" in lines[0] and "warning" in lines[0], done.stderr


# --- the emulator's HTTP API: a malformed body is the client's mistake (400), never a 500

NESTED = "[" * 100_000 + "]" * 100_000
HTTP_CASES: list[tuple[str, str, str, bytes]] = [
    ("login-nested", "site", "/api/auth/login/", NESTED.encode()),
    ("login-nested-object", "site", "/api/auth/login/", b'{"username":' * 50_000),
    ("signup-nested", "site", "/api/auth/user/signup/", NESTED.encode()),
    (
        "signup-email-5mb",
        "site",
        "/api/auth/user/signup/",
        json.dumps({"email": "a" * 5_000_000 + "@x.org", "password": "secret12"}).encode(),
    ),
    ("faults-list-site", "site", "/_emulator/faults", b"[]"),
    ("faults-null-site", "site", "/_emulator/faults", b"null"),
    ("faults-string-site", "site", "/_emulator/faults", b'"x"'),
    ("faults-nested-site", "site", "/_emulator/faults", NESTED.encode()),
    ("faults-list-controller", "controller", "/_emulator/faults", b"[1, 2]"),
    ("faults-null-controller", "controller", "/_emulator/faults", b"null"),
    ("faults-number-controller", "controller", "/_emulator/faults", b"5"),
]


@pytest.mark.parametrize(
    ("server", "path", "body"), [c[1:] for c in HTTP_CASES], ids=[c[0] for c in HTTP_CASES]
)
def test_the_emulator_answers_400_with_a_detail(
    world: World, server: str, path: str, body: bytes
) -> None:
    base = world.site if server == "site" else world.controller
    method = "PUT" if "faults" in path else "POST"
    r = httpx.request(
        method, base + path, content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text[:300]
    assert r.json()["detail"]
    # and the server still answers
    assert httpx.get(base + "/_emulator/faults").status_code == 200
