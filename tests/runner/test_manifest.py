from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

from fcapi.stats import RequestStats
from runner.outputs import manifest as mf
from runner.outputs import metrics as mt
from runner.outputs.writers import WRITERS
from runner.outputs.writers.manifest_json import ManifestJson
from tests.runner.inventories import PRIVATE_KEY, make_inventory
from tests.runner.runs import T0, TOKENS, finished_state, sample_stats


def test_manifest_lists_every_file_sorted_relative(tmp_path: Path) -> None:
    run = tmp_path / "20261123-114501-ab12"
    (run / "sites" / "beta" / "run1" / "step1").mkdir(parents=True)
    (run / "sites" / "beta" / "run1" / "step1" / "output.csv").write_text("5.3\n")
    (run / "sites" / "alpha").mkdir(parents=True)
    (run / "sites" / "alpha" / "log.txt").write_text("log")
    (run / "metrics.json").write_text("{}")
    (run / "state.json").write_text("{secret}")
    (run / ".metrics.json.abc.tmp").write_text("half")
    (run / "link").symlink_to(run / "metrics.json")
    manifest = mf.write_manifest(run, "20261123-114501-ab12", now=T0)
    assert [e.path for e in manifest.files] == [
        "metrics.json",
        "sites/alpha/log.txt",
        "sites/beta/run1/step1/output.csv",
    ]
    out = manifest.files[2]
    assert out.size == 4
    assert out.sha256 == hashlib.sha256(b"5.3\n").hexdigest()
    assert manifest.total_bytes == 2 + 3 + 4
    on_disk = json.loads((run / "manifest.json").read_text())
    assert on_disk["files"][0]["path"] == "metrics.json"
    # written again, it does not list itself
    assert "manifest.json" not in [e.path for e in mf.build_manifest(run, "x").files]


def test_metrics_of_a_finished_run() -> None:
    state = finished_state()
    m = mt.build_metrics(
        state,
        make_inventory(),
        workflow_path=Path("/w/workflow.toml"),
        stats=sample_stats(),
        finished_at=T0 + timedelta(seconds=10),
        resources=mt.process_resources(10.0),
    )
    assert m.status == "completed"
    assert m.wall_clock_seconds == 10.0
    assert m.project_id == 17 and m.app == "mean-app" and m.coordinator == "alpha"
    assert [s.status for s in m.sites] == ["ok", "ok", "ok"]
    assert m.requests.total == 9 and m.requests.max_rate == 3.0
    assert m.requests.by_endpoint["GET /api/projects/{id}/"] == 6
    assert m.bytes_moved.uploaded_from_runner == 100 + 101 + 102
    assert m.bytes_moved.downloaded == 3 * 70
    assert m.counters["website_requests"] == 9
    assert m.results[0] == "sites/alpha/run1/results_step1.zip"
    assert m.result_files[:2] == [
        "sites/alpha/run1/step1/config.yml",
        "sites/alpha/run1/step1/output.csv",
    ]
    assert m.sites[0].result_files == {
        "sites/alpha/run1/results_step1.zip": [
            "sites/alpha/run1/step1/config.yml",
            "sites/alpha/run1/step1/output.csv",
        ]
    }
    assert m.logs[-1] == "sites/gamma/run1/log_step1.txt"
    names = [p.name for p in m.phases]
    assert names == ["project", "connect", "join", "upload", "finalize", "collect"]
    upload = next(p for p in m.phases if p.name == "upload")
    assert upload.start_offset_seconds == 1.8  # alpha's start: first of the three
    assert upload.duration_seconds is not None and abs(upload.duration_seconds - 1.2) < 1e-6
    # fedflow's names, where they mean the same
    data = json.loads(m.model_dump_json())
    for key in (
        "status",
        "started_at",
        "finished_at",
        "config_path",
        "log_path",
        "metadata",
        "phases",
        "counters",
        "resources",
        "error",
    ):
        assert key in data
    assert set(data["resources"]) == {"wall_clock_seconds", "process_cpu_seconds", "peak_rss_kib"}
    assert {"name", "duration_seconds", "details"} <= set(data["phases"][0])


def test_a_failed_site_fails_the_run_and_says_what() -> None:
    m = mt.build_metrics(finished_state(fail="beta"), make_inventory(), workflow_path=Path("w"))
    assert m.status == "failed"
    beta = m.sites[1]
    assert beta.status == "failed" and beta.error == "upload: connection reset by peer"
    assert [p.name for p in beta.phases] == ["connect", "join", "upload"]
    assert mt.site_outcomes(m)["beta"] == "failed: upload: connection reset by peer"
    assert mt.site_outcomes(m)["alpha"] == "ok"
    assert m.requests.total == 0


def test_interrupted_and_real_request_stats() -> None:
    state = finished_state()
    state.phase = "watch"
    state.site("gamma").collect_done = False
    stats = RequestStats()
    for i in range(4):
        stats.record("alpha@example.org", "GET", f"/api/projects/{i}/", 200, 100.0 + i * 0.1)
    m = mt.build_metrics(state, make_inventory(), workflow_path=Path("w"), stats=stats)
    assert m.status == "interrupted"
    assert m.sites[2].status == "incomplete"
    assert m.requests.by_endpoint == {"GET /api/projects/{id}/": 4}
    assert m.requests.max_rate_per_user == {"alpha@example.org": 4.0}


def test_no_secret_in_metrics(tmp_path: Path) -> None:
    m = mt.build_metrics(finished_state(), make_inventory(), workflow_path=Path("w"))
    path = mt.write_metrics(tmp_path, m)
    text = path.read_text()
    for secret in [*TOKENS.values(), "pw-alpha-s3cret", PRIVATE_KEY, "secret-key-material"]:
        assert secret not in text
    assert mt.load_metrics(path) == m


def test_the_manifest_is_written_last_and_every_output_names_its_own_file() -> None:
    assert isinstance(WRITERS[-1], ManifestJson)
    assert [w.file for w in WRITERS] == [
        "metrics.json",
        "report.html",
        "ro-crate-metadata.json",
        "manifest.json",
    ]
    assert len({w.name for w in WRITERS}) == len(WRITERS)
