from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runner.outputs import manifest as mf
from runner.outputs import metrics as mt
from runner.outputs.report import render_report, timeline_svg
from runner.outputs.timeline import LEFT, PLOT_WIDTH, RUN_ROW, layout
from tests.runner.inventories import PRIVATE_KEY, make_inventory
from tests.runner.runs import T0, TOKENS, finished_state, sample_stats

CHROMIUM = Path("/usr/bin/chromium")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data) -> None:
        self.text.append(data)


def _metrics(fail: str | None = None) -> mt.Metrics:
    return mt.build_metrics(
        finished_state(fail),
        make_inventory(),
        workflow_path=Path("/w/workflow.toml"),
        stats=sample_stats(),
        finished_at=T0 + timedelta(seconds=8),
        log_path="runner.log",
    )


def _parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    parser.close()
    return parser


def test_report_has_sites_phases_results_and_no_external_anything(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "sites" / "alpha").mkdir(parents=True)
    (run / "sites" / "alpha" / "x.csv").write_text("1")
    html = render_report(_metrics(), mf.build_manifest(run, "20261123-114501-ab12"))
    parsed = _parse(html)
    text = " ".join(parsed.text)
    tags = [t for t, _ in parsed.tags]
    assert (
        "script" not in tags and "link" not in tags and "img" not in tags and "iframe" not in tags
    )
    for _, attrs in parsed.tags:
        for key in ("href", "src"):
            value = attrs.get(key)
            if value is not None:
                assert not re.match(r"^([a-z]+:|//|/)", value), value
    assert not re.search(r"https?://|url\(|@import", html)
    for site in ("alpha", "beta", "gamma"):
        assert site in text
        assert f'data-site="{site}"' in html
    for phase in ("project", "connect", "join", "upload", "finalize", "collect"):
        assert f'data-phase="{phase}"' in html
    assert "svg" in tags and "style" in tags
    hrefs = [a.get("href") for t, a in parsed.tags if t == "a"]
    assert "sites/alpha/run1/step1/output.csv" in hrefs
    assert "sites/alpha/run1/results_step1.zip" in hrefs
    assert "sites/gamma/run1/log_step1.txt" in hrefs
    assert "runner.log" in hrefs and "manifest.json" in hrefs
    assert "17" in text and "mean-app" in text
    assert "9 website requests" in text


def test_failed_site_is_named_with_what_failed() -> None:
    html = render_report(_metrics(fail="beta"))
    text = " ".join(_parse(html).text)
    assert "failed: beta" in text
    assert "upload: connection reset by peer" in text
    assert 'class="badge failed"' in html
    assert 'stroke="#cf222e"' in html  # the failed bar is outlined


def test_everything_is_escaped() -> None:
    state = finished_state(fail="beta")
    state.finish_phase("beta", "upload", "failed", '<script>alert("x")</script> & "q"')
    m = mt.build_metrics(state, make_inventory(), workflow_path=Path('/w/"><b>x.toml'))
    html = render_report(m)
    assert "<script>" not in html and "<b>x.toml" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;q&quot;" in html
    _parse(html)


def test_no_secret_in_report() -> None:
    html = render_report(_metrics())
    for secret in [*TOKENS.values(), "pw-alpha-s3cret", PRIVATE_KEY, "secret-key-material"]:
        assert secret not in html


def test_timeline_axis_and_unfinished_bars() -> None:
    state = finished_state()
    state.start_phase("gamma", "watch", T0 + timedelta(seconds=5))
    m = mt.build_metrics(
        state, make_inventory(), workflow_path=Path("w"), finished_at=T0 + timedelta(seconds=30)
    )
    svg = timeline_svg(m)
    assert svg.count("<svg") == 1 and "seconds since the run started" in svg
    assert ">30</text>" in svg and ">0</text>" in svg
    assert 'data-phase="watch"' in svg and 'fill-opacity="0.45"' in svg


def test_timeline_geometry_is_seconds_on_the_plot() -> None:
    t = layout(_metrics(fail="beta"))  # 8 s of run: the axis goes 0..8, a tick a second
    assert [r.label for r in t.rows] == [RUN_ROW, "alpha", "beta", "gamma"]
    assert [r.shaded for r in t.rows] == [True, False, True, False]
    assert [k.seconds for k in t.ticks] == [float(s) for s in range(9)]
    assert t.ticks[0].x == LEFT and t.ticks[-1].x == LEFT + PLOT_WIDTH
    project = t.rows[0].bars[0]
    assert project.span.phase == "project" and project.width == PLOT_WIDTH / 8
    upload = next(b for b in t.rows[2].bars if b.span.phase == "upload")
    assert upload.failed and upload.x == LEFT + PLOT_WIDTH * upload.span.start / 8
    assert [e.phase for e in t.legend][:3] == ["connect", "project", "join"]
    assert t.height > t.axis_y > t.rows[-1].y


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium here")
def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_report(_metrics(fail="beta")))
    out = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-500:]
    assert "fedstack run 20261123-114501-ab12" in out.stdout
