"""What a run may unpack from its result zips: per file, per zip, per run, refused before writing.

The zips are made here, hostile on purpose: members of exactly 1 MiB at a high ratio (which
slipped under the old `> 1 MiB` ratio check), many just-under-1-MiB members, sizes over the
bounds, and headers that lie about the sizes.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import pytest

from fcapi.emulator.serve import running_site
from fedinfra.inventory import INVENTORY_VERSION, Inventory, SiteEntry
from runner.api import execute
from runner.collect.unpack import (
    MAX_MEMBERS,
    UnpackLimits,
    UnsafeArchive,
    extract_result,
    parse_size,
)
from runner.errors import EXIT_SITES_FAILED
from runner.plan.workflow import WorkflowError, load_workflow
from tests.runner.federation import build

MiB = 1 << 20


def make_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def step_dir(run_dir: Path, site: str = "alpha", step: int = 1) -> Path:
    """Where the runner unpacks a result: <run>/sites/<site>/run1/step<n>."""
    return run_dir / "sites" / site / "run1" / f"step{step}"


def nothing_written(parent: Path) -> bool:
    return not parent.exists() or not any(parent.iterdir())


def test_members_of_exactly_one_mib_at_a_high_ratio_are_refused(tmp_path: Path) -> None:
    # with some incompressible padding, so that the zip as a whole stays under the ratio
    members = {"pad.bin": os.urandom(64 * 1024)} | {f"m{i}.bin": bytes(MiB) for i in range(8)}
    bomb = make_zip(tmp_path / "r.zip", members)
    target = step_dir(tmp_path / "run")
    with pytest.raises(UnsafeArchive, match=r"m0.bin': compressed over 200:1"):
        extract_result(bomb, target)
    assert nothing_written(target.parent)


def test_many_members_just_under_one_mib_are_refused_as_a_whole(tmp_path: Path) -> None:
    bomb = make_zip(tmp_path / "r.zip", {f"m{i}.bin": bytes(MiB - 1) for i in range(48)})
    target = step_dir(tmp_path / "run")
    with pytest.raises(UnsafeArchive, match=r"r.zip: compressed over 200:1 in all"):
        extract_result(bomb, target)
    assert nothing_written(target.parent)


def test_a_member_over_the_per_file_bound_is_refused_before_writing(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "r.zip", {"a.bin": os.urandom(MiB), "b.bin": b"x"})
    target = step_dir(tmp_path / "run")
    with pytest.raises(UnsafeArchive, match=r"'a.bin': 1048576 bytes, over 524288 per file"):
        extract_result(zip_path, target, limits=UnpackLimits(member=MiB // 2))
    assert nothing_written(target.parent)


def test_a_zip_over_the_per_zip_bound_is_refused_before_writing(tmp_path: Path) -> None:
    members = {f"m{i}.bin": os.urandom(300 * 1024) for i in range(4)}
    zip_path = make_zip(tmp_path / "r.zip", members, zipfile.ZIP_STORED)
    target = step_dir(tmp_path / "run")
    with pytest.raises(UnsafeArchive, match=r"1228800 bytes unpacked, over 1048576 per zip"):
        extract_result(zip_path, target, limits=UnpackLimits(zip=MiB))
    assert nothing_written(target.parent)


def test_the_run_bound_counts_what_earlier_zips_unpacked(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    limits = UnpackLimits(run=MiB)
    first = make_zip(tmp_path / "a.zip", {"a.bin": os.urandom(600 * 1024)}, zipfile.ZIP_STORED)
    extract_result(first, step_dir(run_dir, "alpha"), limits=limits)
    second = make_zip(tmp_path / "b.zip", {"b.bin": os.urandom(600 * 1024)}, zipfile.ZIP_STORED)
    with pytest.raises(UnsafeArchive, match=r"over the 434176 bytes left of 1048576 per run"):
        extract_result(second, step_dir(run_dir, "beta"), limits=limits)
    assert (step_dir(run_dir, "alpha") / "a.bin").stat().st_size == 600 * 1024
    assert nothing_written(step_dir(run_dir, "beta").parent)
    # the same step unpacked again replaces itself: it does not count against itself
    extract_result(first, step_dir(run_dir, "alpha"), limits=limits)


async def test_the_workflows_bounds_reach_the_collection(tmp_path: Path) -> None:
    """A run whose workflow allows 16 bytes per zip refuses every site's result, naming it."""
    async with running_site() as website:
        fed = await build(tmp_path, website.url, local_sites=3)
        text = fed.workflow_file.read_text()
        fed.workflow_file.write_text('unpack = { zip = "16B" }\n' + text)
        outcome = await execute(
            fed.inventory, fed.workflow(), fed.passwords, website_url=fed.website_url
        )
    assert outcome.code == EXIT_SITES_FAILED
    failures = outcome.summary["failures"]
    assert isinstance(failures, dict)
    for site in ("site1", "site2", "site3"):
        assert "over 16 per zip" in failures[site], failures
        assert not list((outcome.run_dir / "sites" / site).glob("run*/step*/*.csv"))


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    zip_path = make_zip(
        tmp_path / "r.zip", {f"f{i}": b"" for i in range(MAX_MEMBERS + 1)}, zipfile.ZIP_STORED
    )
    target = step_dir(tmp_path / "run")
    with pytest.raises(UnsafeArchive, match=rf"{MAX_MEMBERS + 1} members, over {MAX_MEMBERS}"):
        extract_result(zip_path, target)
    assert nothing_written(target.parent)


def _lie_about_sizes(path: Path, size: int) -> None:
    """Rewrite every declared uncompressed size (local headers and central directory)."""
    raw = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(sig)
        while at >= 0:
            struct.pack_into("<I", raw, at + offset, size)
            at = raw.find(sig, at + 4)
    path.write_bytes(bytes(raw))


def test_a_header_that_understates_the_size_is_refused_and_nothing_is_left(
    tmp_path: Path,
) -> None:
    zip_path = make_zip(tmp_path / "r.zip", {"a.bin": os.urandom(256 * 1024)})
    _lie_about_sizes(zip_path, 1024)
    target = step_dir(tmp_path / "run")
    with pytest.raises(UnsafeArchive, match=r"r.zip: (unreadable|member 'a.bin')"):
        extract_result(zip_path, target)
    assert nothing_written(target.parent)


def test_a_header_that_overstates_the_size_is_refused_and_nothing_is_left(
    tmp_path: Path,
) -> None:
    zip_path = make_zip(tmp_path / "r.zip", {"a.bin": os.urandom(1024)}, zipfile.ZIP_STORED)
    _lie_about_sizes(zip_path, 3 * 1024**3)
    target = step_dir(tmp_path / "run")
    with pytest.raises(UnsafeArchive, match=r"over"):
        extract_result(zip_path, target)
    assert nothing_written(target.parent)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1GiB", 1024**3), ("512 MiB", 512 * MiB), ("10MB", 10**7), ("4096", 4096), (7, 7)],
)
def test_sizes_are_read_with_their_units(text: str | int, size: int) -> None:
    assert parse_size(text) == size


def test_the_workflow_file_sets_the_bounds(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x\n")
    inventory = Inventory(
        version=INVENTORY_VERSION,
        stack="t",
        sites=[
            SiteEntry(
                name="alpha",
                fc_user="a@x.org",
                role="coordinator",
                transport="local",
                workdir=str(tmp_path / "w"),
                controller={"data_dir": str(tmp_path / "w" / "data")},
            )
        ],
    )
    wf = tmp_path / "wf.toml"
    base = 'app = "mean-app"\n[sites.alpha]\nfiles = ["d.csv"]\n'
    wf.write_text('app = "mean-app"\nunpack = { member = "1MiB", zip = "2MiB", run = "3MiB" }\n'
                  '[sites.alpha]\nfiles = ["d.csv"]\n')  # fmt: skip
    assert load_workflow(wf, inventory).unpack == UnpackLimits(member=MiB, zip=2 * MiB, run=3 * MiB)
    wf.write_text(base)
    assert load_workflow(wf, inventory).unpack == UnpackLimits()
    assert UnpackLimits() == UnpackLimits(member=1024**3, zip=1024**3, run=4 * 1024**3)
    wf.write_text('app = "mean-app"\nunpack = { zip = "lots" }\n[sites.alpha]\nfiles = ["d.csv"]\n')
    with pytest.raises(WorkflowError, match=r"field unpack.zip: 'lots' is not a size"):
        load_workflow(wf, inventory)
