"""Passwords from fedflow's `.env` format and the environment, never shown, never from argv."""

from __future__ import annotations

import os
import warnings

import pytest

from fcapi.credentials import (
    MissingCredentials,
    PasswordFileWarning,
    load_passwords,
    parse_env,
    password_for,
)
from fcapi.errors import ExitCode

FEDFLOW_ENV = """\
# FeatureCloud accounts, as fedflow reads them
alice@example.org=s3cret-alice
export bob@example.org = "p@ss word=with equals"
carol@example.org='single # not a comment'
dave@example.org=plain # a comment
FC_SOMETHING=not-a-user

malformed line
"""


def write_env(path, text=FEDFLOW_ENV, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_parse_env_handles_fedflow_lines():
    parsed = parse_env(FEDFLOW_ENV)
    assert parsed["alice@example.org"] == "s3cret-alice"
    assert parsed["bob@example.org"] == "p@ss word=with equals"
    assert parsed["carol@example.org"] == "single # not a comment"
    assert parsed["dave@example.org"] == "plain"
    assert "malformed line" not in parsed


def test_load_passwords_keeps_users_only_and_hides_them(tmp_path):
    env = write_env(tmp_path / ".env")
    passwords = load_passwords(env, environ={})
    assert sorted(passwords) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
        "dave@example.org",
    ]
    assert passwords["alice@example.org"].get_secret_value() == "s3cret-alice"
    assert "s3cret-alice" not in repr(passwords) and "s3cret-alice" not in str(passwords)


def test_environment_variables_and_fc_user_pair(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environ = {
        "erin@example.org": "from-env",
        "FC_USER": "frank@example.org",
        "FC_PASSWORD": "frank-pw",
        "HOME": "/root",
    }
    passwords = load_passwords(None, environ=environ)
    assert passwords["erin@example.org"].get_secret_value() == "from-env"
    assert passwords["frank@example.org"].get_secret_value() == "frank-pw"
    assert "HOME" not in passwords


def test_file_wins_over_environment_as_in_fedflow(tmp_path):
    env = write_env(tmp_path / "creds.env", "alice@example.org=from-file\n")
    passwords = load_passwords(env, environ={"alice@example.org": "from-env"})
    assert passwords["alice@example.org"].get_secret_value() == "from-file"


def test_default_env_file_is_dot_env_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_passwords(environ={}) == {}
    write_env(tmp_path / ".env", "alice@example.org=x1234\n")
    assert load_passwords(environ={})["alice@example.org"].get_secret_value() == "x1234"


def test_named_env_file_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_passwords(tmp_path / "nope.env", environ={})


def test_group_or_world_readable_file_warns_with_the_fix(tmp_path):
    env = write_env(tmp_path / ".env", mode=0o644)
    with pytest.warns(PasswordFileWarning, match="chmod 600"):
        load_passwords(env, environ={})
    os.chmod(env, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_passwords(env, environ={})


def test_missing_password_says_where_it_looked(tmp_path):
    with pytest.raises(MissingCredentials) as info:
        password_for("zed@example.org", {}, tmp_path / "my.env")
    text = str(info.value)
    assert "zed@example.org" in text
    assert "the environment" in text and "my.env" in text
    assert info.value.exit_code == ExitCode.AUTH
    assert info.value.user == "zed@example.org"
