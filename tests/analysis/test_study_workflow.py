"""The Snakemake study of analysis/, run for real on the demo, made small by a config override:
the regression's federated coefficients equal the centralized ones within 1e-9, and the
figures are PNG images.
"""

from __future__ import annotations

import csv
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ANALYSIS = Path(__file__).resolve().parents[2] / "analysis"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG has first."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR", f"{path} has no IHDR first"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.mark.slow
def test_the_study_workflow_compares_federated_with_centralized(tmp_path: Path) -> None:
    work = tmp_path / "analysis"
    shutil.copytree(ANALYSIS, work, ignore=shutil.ignore_patterns("results", ".snakemake"))
    small = tmp_path / "small.yaml"
    small.write_text("sites: [2]\nsplits: [unbalanced]\ndeadline: 5m\n")
    snakemake = Path(sys.executable).with_name("snakemake")
    argv = [str(snakemake), "--cores", "2", "--resources", "federation=1"]
    argv += ["--configfile", "config.yaml", str(small)]
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    results = work / "results"
    with (results / "comparison.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    regression = [r for r in rows if r["name"].startswith("linear-regression/")]
    names = {r["name"].rsplit("/", 1)[1] for r in regression}
    assert names == {"intercept", "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"}
    for row in regression:
        fed, central = float(row["federated"]), float(row["centralized"])
        assert abs(fed - central) <= 1e-9, row
        assert float(row["abs_difference"]) == abs(fed - central)
    (mean,) = [r for r in rows if r["name"].startswith("mean-app/")]
    assert float(mean["centralized"]) == pytest.approx(152.13348416289594)  # diabetes y's mean
    for figure in ("coefficients.png", "phases.png"):
        width, height = png_size(results / figure)
        assert width > 100 and height > 100
