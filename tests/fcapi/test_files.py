from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fcapi import files


def test_write_atomic_sets_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "state.json"
    files.write_atomic(target, "one", mode=0o600)
    assert target.read_text() == "one"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    files.write_atomic(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["state.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "metrics.json"
    files.write_atomic(target, "old")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="No space"):
        files.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_sha256_and_temp_names(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert files.sha256_file(path) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert files.is_temp_name(".state.json.k2j3.tmp")
    assert not files.is_temp_name("state.json")
