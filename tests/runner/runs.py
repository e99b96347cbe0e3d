"""A finished (or half-failed) run's state, built in code, for the output tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from fcapi.stats import RequestStats
from runner.engine import checkpoint as cp

T0 = datetime(2026, 11, 23, 11, 45, 1, tzinfo=UTC)
TOKENS = {"alpha": "tok-alpha-9f8e7d", "beta": "tok-beta-1a2b3c", "gamma": "tok-gamma-4d5e6f"}


def finished_state(fail: str | None = None) -> cp.RunState:
    """Three sites through every phase; `fail` names a site whose upload failed."""
    state = cp.new_state(
        "20261123-114501-ab12",
        workflow_digest="sha256:w",
        inventory_digest="sha256:i",
        sites=["alpha", "beta", "gamma"],
        app="mean-app",
        now=T0,
    )
    state.record_project(17)
    state.start_phase(None, "project", T0)
    state.finish_phase(None, "project", now=T0 + timedelta(seconds=1))
    for i, name in enumerate(state.sites):
        site = state.site(name)
        site.token = SecretStr(TOKENS[name])
        at = T0 + timedelta(seconds=1 + i * 0.1)
        for phase, seconds in (
            ("connect", 0.5),
            ("join", 0.3),
            ("upload", 1.0),
            ("finalize", 0.2),
            ("collect", 0.4),
        ):
            state.start_phase(name, phase, at)
            at += timedelta(seconds=seconds)
            if name == fail and phase == "upload":
                state.finish_phase(name, phase, "failed", "connection reset by peer", at)
                break
            state.finish_phase(name, phase, now=at)
        if name == fail:
            continue
        site.joined = site.finalized = site.collect_done = True
        site.uploaded["data.csv"] = cp.UploadedFile(
            name="data.csv",
            source=f"/data/{name}.csv",
            location="local",
            size=100 + i,
            sha256="0" * 64,
        )
        site.collected.append(
            cp.CollectedFile(
                kind="result",
                run=1,
                step=1,
                path=f"sites/{name}/run1/results_step1.zip",
                size=20,
                files=[
                    f"sites/{name}/run1/step1/output.csv",
                    f"sites/{name}/run1/step1/config.yml",
                ],
            )
        )
        site.collected.append(
            cp.CollectedFile(
                kind="log", run=1, step=1, path=f"sites/{name}/run1/log_step1.txt", size=50
            )
        )
    state.phase = "failed" if fail else "done"
    return state


def sample_stats() -> RequestStats:
    """Nine real request records: alpha logs in and polls, beta and gamma log in once."""
    stats = RequestStats()
    stats.record("alpha@example.org", "POST", "/api/auth/login/", 200, 100.0)
    for i in range(6):
        stats.record("alpha@example.org", "GET", "/api/projects/17/", 200, 100.2 + i * 0.4)
    stats.record("beta@example.org", "POST", "/api/auth/login/", 200, 100.0)
    stats.record("gamma@example.org", "POST", "/api/auth/login/", 200, 100.0)
    return stats
