"""Every run recorded with MLflow: a real tracking server on loopback, the embedded store
beside the run folders, `--no-track`, and no secret in what MLflow keeps.

The runs are the embedded demo's (the emulated website, local sites), read back through
MLflow's own client.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from pydantic import SecretStr

from runner import cli, demo
from runner.errors import BadInput
from runner.outputs.writers.mlflow_tracking import LOCAL_STORE, Tracking, choose_tracking

#: how long the MLflow server may take to answer /health (it starts slowly on a busy machine)
SERVER_DEADLINE = 180.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """`mlflow server` on a loopback port, an SQLite store and a local artifact root."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    store = tmp_path / "server"
    store.mkdir()
    cmd = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
        "--default-artifact-root", (store / "artifacts").as_uri(),
    ]  # fmt: skip
    log = (store / "server.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_DEADLINE
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (store / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"mlflow server at {url} did not answer within the deadline:\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def _check_record(client: MlflowClient, run_id: str, sites: int) -> None:
    run = client.get_run(run_id)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["app"] == "mean-app"
    assert params["stack"] == "demo"
    assert params["site_count"] == str(sites)
    assert params["sites"] == ",".join(f"site{i + 1}" for i in range(sites))
    assert len(params["config_sha256"]) == 64
    assert len(params["data.site1.data.csv.sha256"]) == 64
    assert metrics["website_requests"] > 0
    assert metrics["phase.upload.seconds"] >= 0
    assert metrics["result.sites_agree"] == 1.0
    assert tags["fedstack.outcome"] == "completed"
    assert tags["fedstack.failing_sites"] == ""
    assert run.info.status == "FINISHED"
    files = _artifacts(client, run_id)
    assert {"report.html", "metrics.json", "manifest.json"} <= files
    assert "results/site1/run1/step1/output.csv" in files


async def test_a_demo_run_is_read_back_from_a_real_tracking_server(
    tmp_path: Path, mlflow_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome, means = await demo.run_demo(
        2, tmp_path / "runs", json_output=True, tracking=Tracking(uri=mlflow_server)
    )
    assert outcome.code == 0
    tracked = outcome.summary["tracking"]
    assert isinstance(tracked, dict) and tracked["error"] is None
    client = MlflowClient(tracking_uri=mlflow_server)
    _check_record(client, str(tracked["run_id"]), 2)
    run = client.get_run(str(tracked["run_id"]))
    assert run.data.metrics["result.output.csv"] == float(means["site1"]) == 53.2
    assert not (tmp_path / "runs" / LOCAL_STORE).exists()  # a server: no local store
    assert "View run" not in capsys.readouterr().out  # stdout is the --json summary's


def test_the_default_is_a_local_store_beside_the_runs_and_holds_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    passwords: list[SecretStr] = []
    create_accounts = demo.create_accounts

    async def recording(url: str, count: int) -> dict[str, SecretStr]:
        made = await create_accounts(url, count)
        passwords.extend(made.values())
        return made

    monkeypatch.setattr(demo, "create_accounts", recording)
    outdir = tmp_path / "runs"
    assert cli.main(["--demo", "--sites", "3", "--outdir", str(outdir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    store = outdir / LOCAL_STORE
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    _check_record(client, summary["tracking"]["run_id"], 3)
    # neither a password nor a project token anywhere in the store
    state = json.loads((Path(summary["run_dir"]) / "state.json").read_text())
    tokens = [s["token"] for s in state["sites"].values() if s["token"]]
    secrets = [p.get_secret_value() for p in passwords] + tokens
    assert len(secrets) == 5
    for path in (p for p in store.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"a secret in {path}"


def test_no_track_writes_no_store(tmp_path: Path) -> None:
    outdir = tmp_path / "runs"
    assert cli.main(["--demo", "--sites", "2", "--outdir", str(outdir), "--no-track"]) == 0
    assert not (outdir / LOCAL_STORE).exists()
    assert [p.name for p in outdir.iterdir() if not p.name.startswith(".")] != []


def test_without_mlflow_a_run_says_how_to_get_it_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    tracking, note = choose_tracking(tmp_path, None, off=False)
    assert tracking is None
    assert "pip install 'fedstack[tracking]'" in note and "--no-track" in note
    assert "\n" not in note
    assert choose_tracking(tmp_path, None, off=True) == (None, "")
    with pytest.raises(BadInput, match="--tracking-uri needs MLflow"):
        choose_tracking(tmp_path, "http://127.0.0.1:1", off=False)


def test_a_password_in_the_tracking_uri_is_never_shown() -> None:
    assert Tracking(uri="https://me:hunter2@mlflow.example:8443/x").shown == (
        "https://me:***@mlflow.example:8443/x"
    )


def test_a_run_imports_mlflow_only_when_it_is_tracked() -> None:
    probe = "import sys, runner.cli, runner.api; print('mlflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
