"""Workflows of several apps through the runner: every step set, checked, collected, reported.

The end-to-end test chains the emulator's in-process mean app twice (its output named
`data.csv`, so that the second step reads what the first wrote) over real HTTP and real
controller processes: fast, and the step order is visible in what each step computed. The
engine apps' two-step example is tests/apps/test_example_workflow.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from fcapi.website import WebsiteClient
from runner.api import execute, start_state
from runner.engine import checkpoint as cp
from runner.errors import BadInput
from runner.outputs import metrics as mt
from runner.outputs.report import render_report
from tests.runner.federation import Federation, local_federation
from tests.runner.inventories import make_inventory
from tests.runner.runs import T0, finished_state

CHAINED_MEANS = "fc_mean:\n  input_name: data.csv\n  output_name: data.csv\n"


def _two_step_state() -> cp.RunState:
    """A finished run of standardize then linear-regression; gamma got no second result."""
    state = finished_state()
    state.app = "standardize"
    state.steps = [
        cp.StepApp(slug="standardize", app_id=902),
        cp.StepApp(slug="linear-regression", app_id=901),
    ]
    for name in ("alpha", "beta"):
        state.site(name).collected.append(
            cp.CollectedFile(
                kind="result",
                run=1,
                step=2,
                path=f"sites/{name}/run1/results_step2.zip",
                size=30,
                files=[f"sites/{name}/run1/step2/model.json"],
            )
        )
    return state


def _metrics(state: cp.RunState) -> mt.Metrics:
    return mt.build_metrics(
        state,
        make_inventory(),
        workflow_path=Path("/w/workflow.toml"),
        finished_at=T0 + timedelta(seconds=8),
    )


def test_metrics_list_every_step_with_its_app_and_each_sites_files() -> None:
    m = _metrics(_two_step_state())
    assert m.apps == ["standardize", "linear-regression"] and m.app == "standardize"
    assert [(s.step, s.app, s.app_id, s.status) for s in m.steps] == [
        (1, "standardize", 902, "ok"),
        (2, "linear-regression", 901, "incomplete"),
    ]
    assert m.steps[0].files["gamma"] == [
        "sites/gamma/run1/step1/config.yml",
        "sites/gamma/run1/step1/output.csv",
    ]
    assert m.steps[1].files == {
        "alpha": ["sites/alpha/run1/step2/model.json"],
        "beta": ["sites/beta/run1/step2/model.json"],
    }
    assert mt.Metrics.model_validate_json(m.model_dump_json()) == m


def test_an_existing_projects_steps_are_those_collected_with_no_app_named() -> None:
    state = finished_state()
    state.steps = []  # a run of project_id: the file names no app
    state.app = None
    [step] = _metrics(state).steps
    assert (step.step, step.app, step.app_id, step.status) == (1, None, None, "ok")


def test_the_report_has_a_row_per_step() -> None:
    html = render_report(_metrics(_two_step_state()))
    assert "<dt>apps</dt><dd>standardize, linear-regression</dd>" in html
    table = html.split("<h2>Workflow steps</h2>", 1)[1].split("</table>", 1)[0]
    rows = table.split("<tr>")[2:]
    assert len(rows) == 2
    assert "<td>standardize</td>" in rows[0] and ">902<" in rows[0] and "3 of 3 sites" in rows[0]
    assert "<td>linear-regression</td>" in rows[1] and ">901<" in rows[1]
    assert "incomplete" in rows[1] and "2 of 3 sites" in rows[1]
    assert 'href="sites/beta/run1/step2/model.json"' in rows[1]


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    async with local_federation(tmp_path, sites=2) as fed:
        (fed.work / "config.yml").write_text(CHAINED_MEANS)
        yield fed


def _with_apps(fed: Federation, line: str) -> None:
    """The workflow file with `line` in place of its first (build writes `app = ...` there)."""
    lines = fed.workflow_file.read_text().splitlines()
    assert lines[0].startswith("app")
    fed.workflow_file.write_text("\n".join([line, *lines[1:]]) + "\n")


async def test_a_missing_app_of_a_workflow_is_one_line_before_any_run(federation: Federation):
    _with_apps(federation, 'apps = ["mean-app", "no-such-app"]')
    with pytest.raises(BadInput) as info:
        await execute(
            federation.inventory,
            federation.workflow(),
            federation.passwords,
            website_url=federation.website_url,
        )
    line = str(info.value)
    assert line.startswith(f"{federation.workflow_file}: field apps[1]: no app 'no-such-app'")
    assert "\n" not in line
    assert not federation.outdir.exists() or not any(federation.outdir.iterdir())


async def test_two_steps_run_in_order_and_every_steps_result_comes_home(federation: Federation):
    _with_apps(federation, 'apps = ["mean-app", "mean-app"]')
    workflow = federation.workflow()
    outcome = await execute(
        federation.inventory, workflow, federation.passwords, website_url=federation.website_url
    )
    assert outcome.code == 0, outcome.summary
    run_dir = outcome.run_dir
    user = federation.inventory.coordinator.fc_user
    async with WebsiteClient(federation.website_url, user, federation.passwords[user]) as web:
        project = await web.get_project(outcome.summary["project_id"])  # type: ignore[arg-type]
    assert [(s.federatedApp.id, s.order) for s in project.workflow] == [(66, 0), (66, 1)]
    for site in ("site1", "site2"):
        first = (run_dir / "sites" / site / "run1" / "step1" / "data.csv").read_text()
        second = (run_dir / "sites" / site / "run1" / "step2" / "data.csv").read_text()
        # step 2 averaged what step 1 wrote: the sites' one shared mean, so the same value
        assert float(first) == float(second) and first.strip() != ""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["apps"] == ["mean-app", "mean-app"]
    assert [(s["step"], s["app"], s["app_id"], s["status"]) for s in metrics["steps"]] == [
        (1, "mean-app", 66, "ok"),
        (2, "mean-app", 66, "ok"),
    ]
    listed = {f["path"] for f in json.loads((run_dir / "manifest.json").read_text())["files"]}
    for site in ("site1", "site2"):
        for step in (1, 2):
            assert f"sites/{site}/run1/step{step}/data.csv" in listed
            assert f"sites/{site}/run1/log_step{step}.txt" in listed
    state = json.loads((run_dir / "state.json").read_text())
    assert state["steps"] == [{"slug": "mean-app", "app_id": 66}] * 2

    # a resume must find the workflow file naming the same apps
    _with_apps(federation, 'app = "mean-app"')
    with pytest.raises(cp.CheckpointError, match="started with apps mean-app, mean-app and the"):
        start_state(federation.inventory, federation.workflow(), run_dir.name)
