"""The analysis result first: each site's values read from its output files, and whether all
sites hold the same answer, at the top of report.html."""

from __future__ import annotations

from pathlib import Path

from runner.outputs.metrics import load_metrics
from runner.outputs.report import render_report
from runner.outputs.results import file_values, read_results
from tests.runner.test_runs_command import RUN_ID, make_run

COEFFICIENTS = "name,coefficient\nintercept,152.13348416289594\nbmi,519.8459200544598\n"


def test_the_regressions_coefficients_and_the_means_number_are_values() -> None:
    assert file_values("coefficients.csv", COEFFICIENTS) == {
        "coefficients.csv: intercept": "152.13348416289594",
        "coefficients.csv: bmi": "519.8459200544598",
    }
    assert file_values("output.csv", "54.20000000000001\n") == {"output.csv": "54.20000000000001"}
    # a data table (the standardize app's output) is no answer
    assert file_values("data.csv", "a,b,c\n1,2,3\n4,5,6\n") == {}
    assert file_values("empty.csv", "") == {}


def test_report_shows_the_result_first_and_whether_the_sites_agree(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, {"alpha": "5.5", "beta": "5.5", "gamma": "5.5"})
    metrics = load_metrics(run_dir / "metrics.json")
    html = render_report(metrics, results=read_results(run_dir, metrics))
    result_at = html.index("<h2>Result</h2>")
    assert result_at < html.index("<dl>") < html.index("<h2>Outcome per site</h2>")
    assert "every site holds the same answer" in html
    assert html.count('<td class="num">5.5</td>') == 3
    (run_dir / "sites" / "gamma" / "run1" / "step1" / "output.csv").write_text("7\n")
    html = render_report(metrics, results=read_results(run_dir, metrics))
    assert "the sites do not hold the same answer" in html
    assert '<td class="num">7</td>' in html


def test_only_the_newest_runs_last_step_is_the_answer(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, {"alpha": "1", "beta": "1", "gamma": "1"})
    metrics = load_metrics(run_dir / "metrics.json")
    alpha = metrics.sites[0]
    step2 = run_dir / "sites" / "alpha" / "run1" / "step2"
    step2.mkdir()
    (step2 / "output.csv").write_text("2\n")
    alpha.result_files["sites/alpha/run1/results_step2.zip"] = ["sites/alpha/run1/step2/output.csv"]
    results = read_results(run_dir, metrics)
    assert results.sites[0].values == {"output.csv": "2"}
    assert results.agree is False
    assert RUN_ID in str(run_dir)
