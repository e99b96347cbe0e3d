from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from fcapi.models import ProjectRun
from runner.collect import unpack as collect
from runner.collect.unpack import UnsafeArchive, extract_result, plan_downloads


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_plan_lists_every_run_and_step_and_logs() -> None:
    runs = [
        ProjectRun(runNr=2, logSteps=[1, 2], resultSteps=[2, 1]),
        ProjectRun(runNr=1, logSteps=[1], resultSteps=[]),
    ]
    plan = plan_downloads("beta", runs)
    assert [(d.kind, d.run, d.step, d.path) for d in plan] == [
        ("log", 1, 1, "sites/beta/run1/log_step1.txt"),
        ("result", 2, 1, "sites/beta/run2/results_step1.zip"),
        ("result", 2, 2, "sites/beta/run2/results_step2.zip"),
        ("log", 2, 1, "sites/beta/run2/log_step1.txt"),
        ("log", 2, 2, "sites/beta/run2/log_step2.txt"),
    ]
    assert plan[1].extract_to == "sites/beta/run2/step1"
    assert plan_downloads("beta", []) == []
    assert collect.missing_results(runs[1:])
    assert not collect.missing_results(runs)


def test_extracts_a_good_zip(tmp_path: Path) -> None:
    z = _zip(tmp_path / "r.zip", {"output.csv": b"5.3\n", "sub/config.yml": b"a: 1\n", "d/": b""})
    target = tmp_path / "run" / "step1"
    files = extract_result(z, target)
    assert files == [target / "output.csv", target / "sub" / "config.yml"]
    assert (target / "output.csv").read_bytes() == b"5.3\n"
    # again (a resume): replaced whole, nothing left over
    (target / "stale.txt").write_text("x")
    extract_result(z, target)
    assert not (target / "stale.txt").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["step1"]


def _symlink_zip(path: Path) -> Path:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    return path


def _fifo_zip(path: Path) -> Path:
    info = zipfile.ZipInfo("pipe")
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(info, "")
    return path


def _raw_name_zip(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"evil")
    return path


def _corrupt_crc(path: Path) -> Path:
    _zip(path, {"a.txt": b"hello world" * 10})
    data = bytearray(path.read_bytes())
    at = data.find(b"hello")
    if at < 0:  # deflated: flip a byte of the compressed stream
        at = 40
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: _raw_name_zip(p, "/etc/evil"), "absolute path"),
        (lambda p: _raw_name_zip(p, "../evil"), "'..' in the path"),
        (lambda p: _raw_name_zip(p, "a/../../evil"), "'..' in the path"),
        (lambda p: _raw_name_zip(p, "C:/evil"), "absolute path"),
        (lambda p: _raw_name_zip(p, "a\\..\\evil"), "backslash"),
        (_symlink_zip, "symbolic link"),
        (lambda p: (p.write_bytes(b"not a zip at all"), p)[1], "not a zip file"),
        (_corrupt_crc, "CRC mismatch"),
        (lambda p: _fifo_zip(p), "not a regular file"),
    ],
    ids=[
        "absolute",
        "dotdot",
        "nested-dotdot",
        "drive",
        "backslash",
        "symlink",
        "garbage",
        "crc",
        "fifo",
    ],
)
def test_refuses_unsafe_zips_and_leaves_nothing(tmp_path: Path, make, expected: str) -> None:
    z = make(tmp_path / "bad.zip")
    target = tmp_path / "out" / "step1"
    with pytest.raises(UnsafeArchive, match=expected) as info:
        extract_result(z, target)
    assert "\n" not in str(info.value)
    assert not target.exists()
    assert not (tmp_path / "evil").exists()
    if (tmp_path / "out").exists():
        assert list((tmp_path / "out").iterdir()) == []


def test_size_limits(tmp_path: Path) -> None:
    z = _zip(tmp_path / "r.zip", {f"f{i}.txt": b"x" for i in range(5)})
    with pytest.raises(UnsafeArchive, match="5 members, over 4"):
        extract_result(z, tmp_path / "a", max_members=4)
    with pytest.raises(UnsafeArchive, match="5 bytes unpacked, over 4"):
        extract_result(z, tmp_path / "b", max_total_bytes=4)
    bomb = _zip(tmp_path / "bomb.zip", {"zeros": b"\0" * (4 * 1024 * 1024)})
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        extract_result(bomb, tmp_path / "c")


def test_duplicate_members_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.txt", b"1")
        with pytest.warns(UserWarning):
            zf.writestr("a.txt", b"2")
    with pytest.raises(UnsafeArchive, match="appears twice"):
        extract_result(path, tmp_path / "out")


def test_resume_skips_what_was_collected_and_records_unpacked_files(tmp_path: Path) -> None:
    runs = [ProjectRun(runNr=1, logSteps=[1], resultSteps=[1])]
    plan = plan_downloads("alpha", runs)
    zip_path = tmp_path / plan[0].path
    zip_path.parent.mkdir(parents=True)
    _zip(zip_path, {"output.csv": b"5\n"})
    assert plan[0].extract_to is not None
    files = extract_result(zip_path, tmp_path / plan[0].extract_to)
    entry = collect.collected_entry(plan[0], tmp_path, files)
    assert entry.path == "sites/alpha/run1/results_step1.zip"
    assert entry.files == ["sites/alpha/run1/step1/output.csv"]
    assert entry.size == zip_path.stat().st_size
    assert collect.pending_downloads(plan, [entry]) == [plan[1]]
    assert collect.pending_downloads(plan, []) == plan


def test_odd_members_are_refused_in_one_line(tmp_path: Path) -> None:
    clash = tmp_path / "clash.zip"
    with zipfile.ZipFile(clash, "w") as zf:
        zf.writestr("a", b"file")
        zf.writestr("a/b", b"under a file")
    with pytest.raises(UnsafeArchive, match="cannot unpack"):
        extract_result(clash, tmp_path / "o1")
    assert not (tmp_path / "o1").exists()
    dot = _raw_name_zip(tmp_path / "dot.zip", ".")
    with pytest.raises(UnsafeArchive, match="no file name"):
        extract_result(dot, tmp_path / "o2")
    encrypted = _zip(tmp_path / "enc.zip", {"a.txt": b"x"})
    data = bytearray(encrypted.read_bytes())
    # set the "encrypted" flag bit in the local and central headers
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        at = data.find(sig)
        flag_at = at + (6 if sig == b"PK\x03\x04" else 8)
        data[flag_at] |= 0x01
    encrypted.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchive, match="unreadable"):
        extract_result(encrypted, tmp_path / "o3")
