from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

from runner.outputs.progress import Progress, choose_mode, make_progress


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return datetime(2026, 11, 23, 11, 45, 1, tzinfo=UTC) + timedelta(seconds=self.t - 100)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _progress(mode, stream, clock, size=(80, 20)):
    return Progress(
        ["alpha", "beta"],
        mode=mode,
        stream=stream,
        clock=clock,
        wallclock=clock.wall,
        refresh=0.5,
        size=lambda: size,
    )


def test_plain_lines_are_deterministic() -> None:
    out, clock = io.StringIO(), Clock()
    p = _progress("plain", out, clock)
    p.phase("alpha", "join", "running")
    clock.t += 2.5
    p.phase("alpha", "join", "ok", "joined project 17")
    p.phase(None, "project", "ok")
    p.note("beta", "retrying after 429")
    p.phase("beta", "upload", "failed", "connection reset")
    p.close()
    assert out.getvalue().splitlines() == [
        "2026-11-23T11:45:01Z alpha join running",
        "2026-11-23T11:45:03Z alpha join ok: joined project 17",
        "2026-11-23T11:45:03Z run project ok",
        "2026-11-23T11:45:03Z beta -: retrying after 429",
        "2026-11-23T11:45:03Z beta upload failed: connection reset",
    ]


def test_json_mode_prints_nothing() -> None:
    out = io.StringIO()
    p = make_progress(out, json_mode=True)
    assert p.mode == "quiet"
    p.phase("alpha", "join", "running", "x")
    p.close()
    assert out.getvalue() == ""


def test_mode_follows_the_stream() -> None:
    assert choose_mode(Tty(), json_mode=False) == "tty"
    assert choose_mode(io.StringIO(), json_mode=False) == "plain"
    assert choose_mode(Tty(), json_mode=True) == "quiet"


def test_tty_table_redraws_in_place_at_a_modest_rate() -> None:
    out, clock = Tty(), Clock()
    p = _progress("tty", out, clock)
    p.phase("alpha", "join", "running")
    first = out.getvalue()
    assert first.startswith("\x1b[?25l") and "\x1b[1A" not in first  # drawn, not moved over
    p.phase("beta", "join", "running")  # same instant: no redraw
    assert out.getvalue() == first
    clock.t += 3
    p.phase("alpha", "join", "ok", "done")
    second = out.getvalue()[len(first) :]
    # back over the 4 lines drawn before
    assert second.startswith("\r\x1b[2K" + "\x1b[1A\x1b[2K" * 3)
    table = p.table()
    assert table[0].split() == ["site", "phase", "state", "elapsed", "message"]
    assert table[1].split()[:3] == ["alpha", "join", "ok"]
    assert table[2].split()[:4] == ["beta", "join", "..", "3.0s"]
    assert table[-1] == "elapsed  3.0s"


def test_tty_table_fits_many_sites_showing_trouble_first() -> None:
    clock = Clock()
    names = [f"s{i:03d}" for i in range(100)]
    p = Progress(
        names, mode="tty", stream=Tty(), clock=clock, wallclock=clock.wall, size=lambda: (60, 12)
    )
    for n in names:
        p.phase(n, "upload", "ok")
    p.phase("s050", "upload", "failed", "x" * 200)
    lines = p.table()
    assert len(lines) <= 12
    assert lines[1].startswith("s050") and len(lines[1]) <= 60
    assert lines[-2] == "... 92 more sites: 92 ok"


async def test_run_loop_ends_on_close() -> None:
    out, clock = Tty(), Clock()
    p = _progress("tty", out, clock)
    task = asyncio.create_task(p.run())
    await asyncio.sleep(0)
    p.close()
    await asyncio.wait_for(task, 2)
    assert "alpha" in out.getvalue()


def test_make_progress_then_start_as_the_cli_does() -> None:
    out, clock = io.StringIO(), Clock()
    p = make_progress(out, json_mode=False)
    p._clock, p._wallclock = clock, clock.wall  # deterministic stamps
    p.start("20261123-114501-ab12", ["alpha", "beta"], run_dir=None)
    p.phase("beta", "join", "ok")
    p.close()
    assert out.getvalue().splitlines() == [
        "2026-11-23T11:45:01Z run start: run 20261123-114501-ab12, 2 sites",
        "2026-11-23T11:45:01Z beta join ok",
    ]
    assert make_progress(io.StringIO(), json_mode=True).mode == "quiet"


async def test_start_on_a_tty_runs_the_ticker_until_close() -> None:
    out, clock = Tty(), Clock()
    p = make_progress(out)
    p._clock = clock
    p.start("20261123-114501-ab12", ["alpha"])
    assert p._ticker is not None
    await asyncio.sleep(0)
    p.close()
    await asyncio.sleep(0)
    assert p._ticker.done()
    assert out.getvalue().startswith("run 20261123-114501-ab12: 1 sites")


def test_elapsed_stops_when_a_phase_ends_and_the_run_row_leads() -> None:
    out, clock = Tty(), Clock()
    p = _progress("tty", out, clock)
    p.phase("alpha", "join", "running")
    clock.t += 2
    p.phase("alpha", "join", "ok")
    p.phase(None, "project", "running")
    clock.t += 5
    table = p.table()
    assert table[1].split()[:4] == ["run", "project", "..", "5.0s"]
    assert table[2].split()[:4] == ["alpha", "join", "ok", "2.0s"]
