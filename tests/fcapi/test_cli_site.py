"""`python -m fcapi site-check|site-info|site-join`: a host-held site's own login and join.

What the runner and the site's admin rely on: the password comes from a 0600 file only (one
readable by others is refused, naming it), the token from stdin, one JSON line on stdout, the
site info written for the controller, and neither secret in any output.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from pydantic import SecretStr

from fcapi.cli import amain
from fcapi.errors import ExitCode
from fcapi.files import write_atomic
from fcapi.website import WebsiteClient

from .conftest import PASSWORD, new_email


async def fc(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await amain(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


async def account(url: str) -> str:
    user = new_email("held")
    await WebsiteClient.signup(url, user, SecretStr(PASSWORD))
    return user


def password_file(tmp_path: Path, text: str = PASSWORD + "\n", mode: int = 0o600) -> Path:
    path = tmp_path / "fc-password"
    write_atomic(path, text, mode)
    path.chmod(mode)
    return path


async def test_site_check_logs_in_with_the_file_and_prints_one_json_line(site, tmp_path):
    user = await account(site.url)
    path = password_file(tmp_path)
    code, out, err = await fc(
        "site-check", "--website-url", site.url, "-u", user, "--credential-file", str(path)
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == {"user": user, "login": "ok"}
    assert len(out.splitlines()) == 1 and PASSWORD not in out


async def test_a_password_file_others_can_read_is_refused_naming_it(site, tmp_path):
    user = await account(site.url)
    path = password_file(tmp_path, mode=0o640)
    argv = ["site-check", "--website-url", site.url, "-u", user, "--credential-file", str(path)]
    code, out, err = await fc(*argv)
    assert code == ExitCode.USAGE and out == ""
    why = f"mode 640, readable by others; run: chmod 600 {path}"
    assert err == f"fcapi: error: password file {path}: {why}\n"
    path.unlink()
    code, _, err = await fc(*argv)
    assert code == ExitCode.USAGE
    assert err == f"fcapi: error: password file {path}: no such file on this host\n"


async def test_a_wrong_password_in_the_file_is_an_auth_failure(site, tmp_path):
    user = await account(site.url)
    path = password_file(tmp_path, "not-the-password\n")
    code, _, err = await fc(
        "site-check", "--website-url", site.url, "-u", user, "--credential-file", str(path)
    )
    assert code == ExitCode.AUTH and "not-the-password" not in err


async def test_site_join_writes_the_site_info_and_joins_with_the_token_on_stdin(site, tmp_path):
    coordinator, user = await account(site.url), await account(site.url)
    async with WebsiteClient(site.url, coordinator, SecretStr(PASSWORD)) as web:
        project = await web.create_project("held")
        token = (await web.create_token(project.id)).token
    path = password_file(tmp_path)
    data_dir = tmp_path / "controller-data"
    argv = ["site-join", "--website-url", site.url, "-u", user, "--credential-file", str(path)]
    argv += ["--site-name", "bob", "--data-dir", str(data_dir), "-p", str(project.id)]
    code, _, err = await fc(*argv)
    assert code == ExitCode.USAGE and err == "fcapi: error: site-join: no token on stdin\n"

    code, out, err = await fc(*argv, stdin=token + "\n")
    assert (code, err) == (0, ""), err
    result = json.loads(out)
    assert result["joined"] is True and result["project"] == project.id
    assert token not in out and PASSWORD not in out
    info = data_dir / "site_info.json"
    assert info.stat().st_mode & 0o777 == 0o600
    assert json.loads(info.read_text())["name"] == "bob"
    async with WebsiteClient(site.url, user, SecretStr(PASSWORD)) as web:
        assert (await web.get_project(project.id)).id == project.id  # a member now
    # the token used already (an answer lost): a member, so the repeat succeeds
    code, out, _ = await fc(*argv, stdin=token + "\n")
    assert code == 0 and json.loads(out)["joined"] is True
