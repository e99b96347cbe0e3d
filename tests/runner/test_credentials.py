from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from runner.plan.credentials import MissingPasswords, passwords_for_run, run_users
from tests.runner.inventories import make_inventory


def test_env_file_environment_and_stack_merge(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("beta@example.org=pw-beta-file\n")
    env.chmod(0o600)
    inv = make_inventory()
    got = passwords_for_run(
        inv, env_file=env, environ={"gamma@example.org": "pw-gamma-env", "OTHER": "x"}
    )
    assert {u: p.get_secret_value() for u, p in got.items()} == {
        "alpha@example.org": "pw-alpha-s3cret",  # from the stack
        "beta@example.org": "pw-beta-file",
        "gamma@example.org": "pw-gamma-env",
    }
    assert all(isinstance(p, SecretStr) for p in got.values())
    assert "pw-" not in repr(got)


def test_environment_wins_over_stack(tmp_path: Path) -> None:
    inv = make_inventory(("alpha",))
    got = passwords_for_run(inv, env_file=None, environ={"alpha@example.org": "rotated"})
    assert got["alpha@example.org"].get_secret_value() == "rotated"


def test_missing_users_listed_with_places(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./.env
    with pytest.raises(MissingPasswords) as info:
        passwords_for_run(make_inventory(), environ={})
    message = str(info.value)
    assert info.value.users == ["beta@example.org", "gamma@example.org"]
    assert "beta@example.org, gamma@example.org" in message
    assert "the environment" in message and ".env" in message and "stack" in message
    assert "s3cret" not in message and "\n" not in message


def test_named_env_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(MissingPasswords, match="no such file"):
        passwords_for_run(make_inventory(), env_file=tmp_path / "nope.env", environ={})


def test_users_once_each() -> None:
    inv = make_inventory()
    twice = inv.model_copy(
        update={"sites": [s.model_copy(update={"fc_user": "same@x.org"}) for s in inv.sites]}
    )
    assert run_users(twice) == ["same@x.org"]
