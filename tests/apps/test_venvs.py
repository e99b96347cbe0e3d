"""The venv cache: one venv per requirements.txt, built once, rebuilt only when unfinished."""

from __future__ import annotations

import time

import pytest

from fcapi.emulator.engine import venvs


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDSTACK_APP_VENVS", str(tmp_path / "cache"))
    return tmp_path / "cache"


def app(tmp_path, name: str, requirements: str):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "requirements.txt").write_text(requirements)
    return folder


def test_a_venv_is_built_once_per_requirements_and_reused(tmp_path, cache):
    first = venvs.ensure_venv(app(tmp_path, "a", "# nothing\n"))
    assert first.parent == cache and venvs.venv_python(first).exists()
    assert venvs.build_seconds(first) is not None
    started = time.monotonic()
    assert venvs.ensure_venv(app(tmp_path, "b", "# nothing\n")) == first  # same file, same venv
    assert time.monotonic() - started < 1.0
    other = app(tmp_path, "c", "# something else\n") / "requirements.txt"
    assert venvs.venv_key(other) != first.name  # other requirements, another venv
    # a build that was killed leaves no marker: the next use builds it again
    (first / venvs.COMPLETE).unlink()
    (first / "half-built").write_text("")
    assert venvs.ensure_venv(app(tmp_path, "d", "# nothing\n")) == first
    assert not (first / "half-built").exists() and (first / venvs.COMPLETE).is_file()


def test_requirements_that_cannot_be_installed_are_one_line(tmp_path, cache):
    folder = app(tmp_path, "bad", f"{tmp_path / 'no-such-package-1.0.tar.gz'}\n")
    log = tmp_path / "build.log"
    with pytest.raises(venvs.VenvError) as info:
        venvs.ensure_venv(folder, log=log)
    message = str(info.value)
    assert message.startswith(f"pip install -r {folder / 'requirements.txt'} failed")
    assert str(log) in message and "\n" not in message
    with pytest.raises(venvs.VenvError, match=r"requirements\.txt is missing"):
        venvs.ensure_venv(tmp_path)
