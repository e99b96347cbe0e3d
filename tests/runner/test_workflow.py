from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.plan import workflow as wf
from tests.runner.inventories import make_inventory

GOOD = """
app = "mean-app"
config = "config.yml"
deadline = "1h30m"
outdir = "out"

[sites.alpha]
files = ["data/a.csv", { path = "data/b.csv", as = "data.csv" }]

[sites.beta]
host_files = ["/srv/beta.csv"]

[sites.gamma]
files = ["data/g.csv"]
host_files = [{ path = "/srv/g2.csv", as = "extra.csv" }]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    for name in ("a.csv", "b.csv", "g.csv"):
        (tmp_path / "data" / name).write_text("1,2,3\n")
    (tmp_path / "config.yml").write_text("fc_mean:\n  input_name: data.csv\n")
    return tmp_path


def _write(folder: Path, text: str) -> Path:
    path = folder / "workflow.toml"
    path.write_text(text)
    return path


def test_good_workflow_resolves_everything(folder: Path) -> None:
    path = _write(folder, GOOD)
    w = wf.load_workflow(path, make_inventory())
    assert w.app == "mean-app" and w.project_id is None
    assert w.deadline_seconds == 5400
    assert w.outdir == folder / "out"
    assert w.config == (folder / "config.yml").resolve()
    assert w.coordinator == "alpha"
    alpha = w.sites["alpha"]
    assert alpha.coordinator and alpha.fc_user == "alpha@example.org"
    assert [(f.path.name, f.name, f.size) for f in alpha.local] == [
        ("a.csv", "a.csv", 6),
        ("b.csv", "data.csv", 6),
    ]
    assert w.sites["beta"].host == [wf.HostFile(path="/srv/beta.csv", name="beta.csv")]
    assert w.sites["gamma"].host[0].name == "extra.csv"
    # the digest follows meaning, not formatting
    again = wf.load_workflow(_write(folder, GOOD.replace("\n\n", "\n# note\n\n")), make_inventory())
    assert again.digest == w.digest
    changed = wf.load_workflow(_write(folder, GOOD.replace("1h30m", "2h")), make_inventory())
    assert changed.digest != w.digest


def test_existing_project_and_numeric_deadline(folder: Path) -> None:
    text = GOOD.replace('app = "mean-app"', "project_id = 12").replace('"1h30m"', "600")
    w = wf.load_workflow(_write(folder, text), make_inventory())
    assert w.project_id == 12 and w.app is None and w.deadline_seconds == 600


# (what to change in GOOD, what the message must say): each a distinct kind of mistake
BAD: list[tuple[str, tuple[str, str], str]] = [
    ("not toml", ("[sites.alpha]", "[sites.alpha"), "not valid TOML"),
    ("app and project", ('app = "mean-app"', 'app = "mean-app"\nproject_id = 3'), "not both"),
    ("neither", ('app = "mean-app"', ""), "workflow.toml: give exactly one of app"),
    ("bad project id", ('app = "mean-app"', "project_id = -1"), "field project_id"),
    ("unknown top key", ('outdir = "out"', 'outdir = "out"\naap = 1'), "field aap: unknown key"),
    ("unknown site key", ("[sites.beta]", '[sites.beta]\nfile = ["x"]'), "site 'beta', field file"),
    ("unknown ref key", ('as = "data.csv"', 'name = "data.csv"'), "field files[1].name"),
    ("bad deadline", ('"1h30m"', '"soon"'), "field deadline: 'soon' is not a duration"),
    ("zero deadline", ('"1h30m"', "0"), "longer than zero"),
    ("files not a list", ('files = ["data/g.csv"]', "files = 3"), "site 'gamma', field files"),
    ("relative host path", ('"/srv/beta.csv"', '"srv/beta.csv"'), "must be absolute"),
    ("rename with slash", ('as = "data.csv"', 'as = "../data.csv"'), "plain file name"),
    ("two same targets", ('as = "data.csv"', 'as = "a.csv"'), "two files would arrive as 'a.csv'"),
    ("shadows config", ('as = "data.csv"', 'as = "config.yml"'), "app's config"),
    (
        "site without data",
        ('host_files = ["/srv/beta.csv"]', ""),
        "site 'beta': no data",
    ),
    ("no sites", ("[sites.", "[other."), "field"),
    (
        "unknown site",
        ("[sites.gamma]", "[sites.gama]"),
        "site 'gama', field sites: not in the inventory",
    ),
    ("missing local file", ("data/a.csv", "data/nope.csv"), "site 'alpha', field files[0]: "),
    ("local is a dir", ('"data/g.csv"', '"data"'), "site 'gamma', field files[0]: "),
    ("missing config", ('"config.yml"', '"conf.yml"'), "field config: "),
    ("empty apps", ('app = "mean-app"', "apps = []"), "field apps: an empty list names no app"),
    ("bad slug in apps", ('app = "mean-app"', 'apps = ["a", "b c"]'), "field apps[1]: 'b c'"),
    ("app and apps", ('app = "mean-app"', 'app = "a"\napps = ["b"]'), "field apps: give app"),
    ("apps not a list", ('app = "mean-app"', 'apps = "a"'), "field apps: "),
]


@pytest.mark.parametrize(("case", "change", "expected"), BAD, ids=[b[0] for b in BAD])
def test_each_mistake_has_its_own_line(folder: Path, case: str, change, expected: str) -> None:
    old, new = change
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    if case == "no sites":
        text = GOOD.replace("[sites.", "[other.")
    path = _write(folder, text)
    with pytest.raises(wf.WorkflowError) as info:
        wf.load_workflow(path, make_inventory())
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(str(path)), message
    assert expected in message, message


def test_distinct_messages(folder: Path) -> None:
    messages = set()
    for case, (old, new), _ in BAD:
        text = (
            GOOD.replace("[sites.", "[other.") if case == "no sites" else GOOD.replace(old, new, 1)
        )
        with pytest.raises(wf.WorkflowError) as info:
            wf.load_workflow(_write(folder, text), make_inventory())
        messages.add(str(info.value).split(": ", 1)[1])
    assert len(messages) == len(BAD)


def test_missing_sites_are_listed(folder: Path) -> None:
    inv = make_inventory(("alpha", "beta", "gamma", "delta", "eps"))
    with pytest.raises(wf.WorkflowError, match=r"no data for 'delta', 'eps'"):
        wf.load_workflow(_write(folder, GOOD), inv)


def test_unreadable_local_file(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = folder / "data" / "a.csv"
    real_access = os.access

    def access(path, mode, **kwargs) -> bool:  # root reads everything: pretend it cannot
        return False if Path(path) == blocked else real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(wf.WorkflowError, match=r"site 'alpha', field files\[0\]: .* not readable"):
        wf.load_workflow(_write(folder, GOOD), make_inventory())


def test_missing_workflow_file_and_outdir_clash(folder: Path) -> None:
    with pytest.raises(wf.WorkflowError, match="workflow file not found"):
        wf.load_workflow(folder / "nope.toml", make_inventory())
    (folder / "out").write_text("a file")
    with pytest.raises(wf.WorkflowError, match=r"field outdir: .* not a folder"):
        wf.load_workflow(_write(folder, GOOD), make_inventory())


def test_inventory_copy_without_one_coordinator(folder: Path) -> None:
    inv = make_inventory()
    broken = inv.model_copy(
        update={"sites": [s.model_copy(update={"role": "participant"}) for s in inv.sites]}
    )
    with pytest.raises(wf.WorkflowError, match="exactly one coordinator"):
        wf.check_against(wf.read_spec(_write(folder, GOOD)), broken, folder / "workflow.toml")


def test_durations() -> None:
    assert wf.parse_duration("90s") == 90
    assert wf.parse_duration("30m") == 1800
    assert wf.parse_duration("2h") == 7200
    assert wf.parse_duration(12.5) == 12.5
    for bad in ("", "m", "1d", True, None):
        with pytest.raises(ValueError):
            wf.parse_duration(bad)


class _ConfigValue:
    def __init__(self, value: str) -> None:
        self.value = value


def test_default_workflow_from_stack_config(tmp_path: Path) -> None:
    assert wf.workflow_path_from_config({}, tmp_path) is None
    assert wf.workflow_path_from_config({"fedstack:workflow": "w.toml"}, tmp_path) == (
        tmp_path / "w.toml"
    )
    assert wf.workflow_path_from_config(
        {"fedstack:workflow": _ConfigValue("/abs/w.toml")}, tmp_path
    ) == Path("/abs/w.toml")
    assert wf.workflow_path_from_config({"workflow": "x.toml"}, tmp_path) == tmp_path / "x.toml"
    with pytest.raises(wf.WorkflowError, match="fedstack:workflow"):
        wf.workflow_path_from_config({"fedstack:workflow": 3}, tmp_path)


def test_outdir_under_a_file(folder: Path) -> None:
    (folder / "blocker").write_text("a file")
    text = GOOD.replace('outdir = "out"', 'outdir = "blocker/out"')
    with pytest.raises(wf.WorkflowError, match="field outdir: cannot write under"):
        wf.load_workflow(_write(folder, text), make_inventory())


def test_the_documented_example_is_valid(tmp_path: Path) -> None:
    doc = wf.__doc__ or ""
    example = "\n".join(
        line[4:] for line in doc.split("Format", 1)[1].splitlines()[1:] if line.startswith("    ")
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "alpha.csv").write_text("1\n")
    (tmp_path / "data" / "a2.csv").write_text("2\n")
    (tmp_path / "config.yml").write_text("x: 1\n")
    path = tmp_path / "workflow.toml"
    path.write_text(example)
    w = wf.load_workflow(path, make_inventory(("alpha", "beta")))
    assert w.sites["beta"].host[0].path == "/srv/hospital/cohort.csv"
    assert [f.name for f in w.sites["alpha"].local] == ["alpha.csv", "data.csv"]


def test_a_workflow_of_several_apps_keeps_their_order(folder: Path) -> None:
    text = GOOD.replace('app = "mean-app"', 'apps = ["standardize", "linear-regression"]')
    w = wf.load_workflow(_write(folder, text), make_inventory())
    assert w.apps == ("standardize", "linear-regression")
    assert w.app == "standardize" and w.project_id is None
    swapped = text.replace(
        '"standardize", "linear-regression"', '"linear-regression", "standardize"'
    )
    assert wf.load_workflow(_write(folder, swapped), make_inventory()).digest != w.digest


def test_one_app_is_a_one_step_list_with_the_digest_it_always_had(folder: Path) -> None:
    one = wf.load_workflow(_write(folder, GOOD), make_inventory())
    listed = GOOD.replace('app = "mean-app"', 'apps = ["mean-app"]')
    as_list = wf.load_workflow(_write(folder, listed), make_inventory())
    assert one.apps == as_list.apps == ("mean-app",)
    assert one.digest == as_list.digest
    # the digest a file of one app had before `apps` existed, so its runs still resume
    (folder / "a.csv").write_text("1\n")
    old = _write(folder, 'app = "a"\n[sites.alpha]\nfiles = ["a.csv"]\n')
    assert wf.workflow_digest(wf.read_spec(old)) == (
        "sha256:4c2349b8034d6a575dfcb5a2029d82989224c243fe685e0be99906435f8d3a19"
    )


def test_apps_with_a_project_id_is_refused_in_one_line(folder: Path) -> None:
    text = GOOD.replace('app = "mean-app"', 'apps = ["a", "b"]\nproject_id = 3')
    path = _write(folder, text)
    with pytest.raises(wf.WorkflowError) as info:
        wf.load_workflow(path, make_inventory())
    assert str(info.value) == (
        f"{path}: give app or apps (a new project each run) or project_id (an existing one), "
        "not both"
    )
