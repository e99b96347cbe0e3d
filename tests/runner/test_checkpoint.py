from __future__ import annotations

import json
import stat
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from runner.engine import checkpoint as cp
from tests.runner.inventories import make_inventory

T0 = datetime(2026, 11, 23, 11, 45, 1, tzinfo=UTC)


def _state(run_id: str = "20261123-114501-ab12") -> cp.RunState:
    return cp.new_state(
        run_id,
        workflow_digest="sha256:w",
        inventory_digest="sha256:i",
        sites=["alpha", "beta"],
        app="mean-app",
        now=T0,
    )


def test_run_ids_sort_by_time_and_read_well() -> None:
    a = cp.new_run_id(T0, "ab12")
    b = cp.new_run_id(datetime(2026, 11, 23, 11, 45, 2, tzinfo=UTC))
    assert a == "20261123-114501-ab12"
    assert cp.RUN_ID.match(b)
    assert sorted([b, a]) == [a, b]
    with pytest.raises(ValueError):
        cp.new_run_id(T0, "zz")


def test_save_is_0600_atomic_and_round_trips_tokens(tmp_path) -> None:
    state = _state()
    state.site("alpha").token = SecretStr("tok-alpha-single-use")
    state.record_project(42)
    state.start_phase("alpha", "join", now=T0)
    state.finish_phase("alpha", "join", now=T0.replace(second=9))
    path = cp.save_state(state, tmp_path)
    assert path == tmp_path / state.run_id / "state.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temp left
    loaded = cp.load_state(tmp_path, state.run_id)
    assert loaded.project_id == 42
    token = loaded.site("alpha").token
    assert token is not None and token.get_secret_value() == "tok-alpha-single-use"
    assert loaded.site("alpha").phases["join"].duration_seconds == 8.0
    # anywhere else the token is masked
    assert "tok-alpha" not in state.model_dump_json()
    assert "tok-alpha" not in repr(state)


def test_resume_refuses_changed_inputs(tmp_path) -> None:
    state = _state()
    cp.save_state(state, tmp_path)
    ok = cp.resume_state(
        tmp_path, state.run_id, workflow_digest="sha256:w", inventory_digest="sha256:i"
    )
    assert ok.sites.keys() == {"alpha", "beta"}
    with pytest.raises(cp.CheckpointError, match="workflow file changed"):
        cp.resume_state(tmp_path, state.run_id, workflow_digest="x", inventory_digest="sha256:i")
    with pytest.raises(cp.CheckpointError, match="inventory changed"):
        cp.resume_state(tmp_path, state.run_id, workflow_digest="sha256:w", inventory_digest="x")


def test_resume_errors_are_one_line(tmp_path) -> None:
    with pytest.raises(cp.CheckpointError, match="not a run id"):
        cp.load_state(tmp_path, "../etc")
    with pytest.raises(cp.CheckpointError, match="no run 20261123-114501-ffff"):
        cp.load_state(tmp_path, "20261123-114501-ffff")
    bad = tmp_path / "20261123-114501-0000" / "state.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"run_id": "20261123-114501-0000"}))
    with pytest.raises(cp.CheckpointError, match="damaged") as info:
        cp.load_state(tmp_path, "20261123-114501-0000")
    assert "\n" not in str(info.value)
    done = _state("20261123-114501-0001")
    done.phase = "done"
    cp.save_state(done, tmp_path)
    with pytest.raises(cp.CheckpointError, match="already finished"):
        cp.resume_state(
            tmp_path, done.run_id, workflow_digest="sha256:w", inventory_digest="sha256:i"
        )
    assert cp.list_runs(tmp_path) == ["20261123-114501-0000", "20261123-114501-0001"]


def test_never_a_second_project() -> None:
    state = _state()
    assert cp.project_name(state.run_id) == "fedstack 20261123-114501-ab12"
    state.record_project(7)
    state.record_project(7)
    with pytest.raises(cp.CheckpointError, match="refusing"):
        state.record_project(8)


def test_failed_phase_names_the_site_error() -> None:
    state = _state()
    state.finish_phase("beta", "upload", "failed", "connection reset", now=T0)
    assert state.site("beta").error == "upload: connection reset"
    state.finish_phase(None, "project", now=T0)
    assert state.phases["project"].state == "ok"
    with pytest.raises(cp.CheckpointError, match="not part of run"):
        state.site("delta")


def test_inventory_digest_ignores_passwords_only() -> None:
    inv = make_inventory()
    data = inv.model_copy(update={"credentials": {"alpha@example.org": SecretStr("other")}})
    assert cp.inventory_digest(inv) == cp.inventory_digest(data)
    fewer = make_inventory(("alpha", "beta"))
    assert cp.inventory_digest(inv) != cp.inventory_digest(fewer)
    assert cp.digest_json({"a": 1, "b": 2}) == cp.digest_json({"b": 2, "a": 1})


def _apps_state(apps: list[str]) -> cp.RunState:
    return cp.new_state(
        "20261123-114501-ab13",
        workflow_digest="sha256:w",
        inventory_digest="sha256:i",
        sites=["alpha", "beta"],
        apps=apps,
        now=T0,
    )


def test_the_state_records_every_step_and_a_resume_with_other_apps_is_refused(tmp_path) -> None:
    state = _apps_state(["standardize", "linear-regression"])
    state.steps[1].app_id = 901
    cp.save_state(state, tmp_path)
    saved = json.loads((tmp_path / state.run_id / "state.json").read_text())
    assert saved["steps"] == [
        {"slug": "standardize", "app_id": None},
        {"slug": "linear-regression", "app_id": 901},
    ]
    assert saved["app"] == "standardize"
    same = ["standardize", "linear-regression"]
    args = {"workflow_digest": "sha256:w", "inventory_digest": "sha256:i"}
    assert cp.resume_state(tmp_path, state.run_id, apps=same, **args).slugs == same
    for other, named in (
        (["linear-regression", "standardize"], "apps linear-regression, standardize"),
        (["standardize"], "app standardize"),
        ([], "an existing project (project_id)"),
    ):
        with pytest.raises(cp.CheckpointError) as info:
            cp.resume_state(tmp_path, state.run_id, apps=other, **args)
        assert str(info.value) == (
            f"cannot resume run {state.run_id}: it was started with apps standardize, "
            f"linear-regression and the workflow file now names {named}; restore it or start "
            "a new run"
        )


def test_a_state_of_one_app_from_before_steps_loads_as_one_step(tmp_path) -> None:
    state = _state()
    cp.save_state(state, tmp_path)
    path = tmp_path / state.run_id / "state.json"
    old = json.loads(path.read_text())
    del old["steps"]  # as a state written before workflows of several apps
    path.write_text(json.dumps(old))
    loaded = cp.load_state(tmp_path, state.run_id)
    assert loaded.slugs == ["mean-app"] and loaded.app == "mean-app"
    args = {"workflow_digest": "sha256:w", "inventory_digest": "sha256:i"}
    assert cp.resume_state(tmp_path, state.run_id, apps=["mean-app"], **args).slugs == ["mean-app"]
    with pytest.raises(cp.CheckpointError, match="started with app mean-app and the workflow"):
        cp.resume_state(tmp_path, state.run_id, apps=["mean-app", "mean-app"], **args)
