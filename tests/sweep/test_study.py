"""A study file's mistakes are one line naming the file and the key; its matrix is as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.commands.sweep import main
from runner.sweep.cells import cell_shares, expand, share_sizes, split_rows
from runner.sweep.study import StudySpec, load_study

GOOD = 'apps = ["mean-app"]\nsites = [2, 3]\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('apps = ["mean-app"]\n', "key sites: is required"),
        (GOOD + "repeats = 0\n", "key repeats: must be >= 1"),
        (GOOD + "sites_typo = 3\n", "key sites_typo: is not a known field"),
        ('apps = ["mean-app"]\nsites = [2, 2]\n', "key sites: names a site count twice"),
        ('apps = ["mean-app"]\nsites = [0]\n', "key sites: every site count must be between 1 and"),
        (GOOD + 'splits = ["skewed"]\n', "key splits.0: Input should be 'balanced'"),
        (GOOD + 'deadline = "soon"\n', "key deadline: 'soon' is not a duration"),
        ('apps = "mean-app"\nsites = [2]\n', "key apps: must be a list"),
        (GOOD + "[data]\ntable = 'missing.csv'\n", "key data.table: no such file"),
        (GOOD + 'splits = ["unbalanced"]\n', "key splits: the demo's values"),
        (GOOD + "[target]\ninventory = 'inv.json'\n", "key target.website_url: is required"),
        ("apps = [\n", "not valid TOML"),
    ],
)
def test_a_bad_study_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    assert main([str(path), "--outdir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"runner: {path}: {expected}"), err
    assert not (tmp_path / "out").exists()  # nothing made before the study is sound


def test_a_missing_study_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml: no such study file" in capsys.readouterr().err


def test_the_matrix_is_every_combination_each_federated_cell_before_its_twin(
    tmp_path: Path,
) -> None:
    study = load_study(write(tmp_path, GOOD + "repeats = 2\ncentralized = true\n"))
    ids = [c.id for c in expand(study.spec)]
    assert ids[:4] == [
        "mean-app-n2-balanced-r1",
        "mean-app-n2-balanced-r1-central",
        "mean-app-n2-balanced-r2",
        "mean-app-n2-balanced-r2-central",
    ]
    assert len(ids) == len(set(ids)) == 2 * 2 * 2
    twin = expand(study.spec)[1]
    assert (twin.run_sites, twin.twin_of) == (1, "mean-app-n2-balanced-r1")


def test_shares_cover_the_table_once_and_a_twin_pools_them() -> None:
    assert share_sizes(442, 3, "balanced") == [148, 147, 147]
    unbalanced = share_sizes(442, 3, "unbalanced")
    assert sum(unbalanced) == 442 and unbalanced[0] < unbalanced[1] < unbalanced[2]
    rows = [[str(i)] for i in range(10)]
    shares = split_rows(rows, 4, "unbalanced")
    assert [r for s in shares for r in s] == rows and all(shares)
    spec = StudySpec.model_validate({"apps": ["a"], "sites": [2], "centralized": True})
    fed, central = expand(spec)[:2]
    assert len(cell_shares(fed, rows)) == 2
    assert cell_shares(central, rows) == [rows]
    with pytest.raises(ValueError, match="3 rows cannot make 4 shares"):
        share_sizes(3, 4, "balanced")


def test_the_example_study_is_the_small_matrix_it_says() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "studies" / "mean-sites.toml"
    study = load_study(example)
    cells = expand(study.spec)
    assert len(cells) == 8 and {c.sites for c in cells} == {2, 3}
    assert study.inventory is None  # the demo
    assert study.folder == example.parents[2] / "fedstack-studies" / "mean-sites"
