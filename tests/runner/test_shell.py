"""The shell lines of runner.sites.shell under a real `sh`: quoting holds for awkward names."""

from __future__ import annotations

import subprocess
import typing
from pathlib import Path

from fedinfra.inventory import SiteEntry
from runner.sites import shell
from runner.sites.registry import TRANSPORTS


def sh(line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=False)


def test_unreadable_files_names_the_missing_and_the_folders(tmp_path: Path) -> None:
    good = tmp_path / "it's a file; rm -rf x"
    good.write_text("data")
    missing = tmp_path / "missing $(echo no)"
    done = sh(shell.unreadable_files([str(good), str(missing), str(tmp_path)]))
    assert done.stdout.splitlines() == [str(missing), str(tmp_path)]


def test_a_noted_command_keeps_its_exit_status(tmp_path: Path) -> None:
    pid_file = tmp_path / "run.pid"
    done = sh(shell.noting_process_group("echo 'quoted arg'; exit 3", str(pid_file)))
    assert (done.returncode, done.stdout) == (3, "quoted arg\n")
    assert not pid_file.exists()


def test_make_dir_quotes_its_path(tmp_path: Path) -> None:
    target = tmp_path / "a b" / "c'd"
    assert sh(shell.make_dir(str(target))).returncode == 0
    assert target.is_dir()


def test_every_inventory_transport_has_an_implementation() -> None:
    transports = typing.get_args(SiteEntry.model_fields["transport"].annotation)
    assert set(TRANSPORTS) == set(transports)
