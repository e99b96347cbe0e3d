"""The live view of a run: what every site is doing right now.

A researcher at a terminal wants one table that stays in place (sites by current phase,
elapsed time, last message), redrawn a few times a second at most so 100 sites cost nothing:
a rich `Live` table, fitted to the terminal, trouble first when the sites do not all fit.
A pipe or a CI log wants plain timestamped lines, one per event, that read well afterwards
and diff well in tests. `--json` wants silence until the summary. The orchestrator calls the
same `phase(...)` in every case and never knows which view is on. Further sinks of the same
calls (the `--events` stream, runner.outputs.events) are listeners the view passes every call
on to, so no second place has to know when a phase changes.
Never pass a secret in a message: the view prints what it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

ProgressMode = Literal["tty", "plain", "quiet"]
RUN = "run"  # the row for run-level events (project, prepare...)

_STATE_MARK = {"ok": "ok", "failed": "FAILED", "running": "..", "skipped": "skip"}
_STATE_STYLE = {"ok": "green", "failed": "bold red", "running": "yellow", "skipped": "dim"}
#: what needs eyes first when not every site fits: failed, then running, then the rest
_TROUBLE_RANK = {"failed": 0, "running": 1}


class ProgressListener(Protocol):
    """Another sink of the orchestrator's progress calls (the event stream)."""

    def start(self, run_id: str, sites: Sequence[str], run_dir: Path | None = None) -> None: ...

    def phase(self, site: str | None, phase: str, state: str, message: str = "") -> None: ...

    def note(self, site: str | None, message: str) -> None: ...

    def finish(self, summary: Mapping[str, object]) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Row:
    phase: str = "-"
    state: str = "waiting"
    since: float = 0.0
    #: when the phase ended (ok, failed, skipped): its elapsed time stops there
    until: float | None = None
    message: str = ""


def choose_mode(stream: TextIO, json_mode: bool) -> ProgressMode:
    if json_mode:
        return "quiet"
    isatty = getattr(stream, "isatty", None)
    return "tty" if isatty is not None and isatty() else "plain"


def _terminal_size() -> tuple[int, int]:
    columns, lines = shutil.get_terminal_size((100, 40))
    return columns, lines


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _elapsed(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:4.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def _one_line(text: str) -> Text:
    return Text(text, no_wrap=True, overflow="crop")


def _table() -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in ("site", "phase", "state"):
        table.add_column(name, no_wrap=True)
    table.add_column("elapsed", justify="right", no_wrap=True)
    # the one column that gives way on a narrow terminal; a long message ends in an ellipsis
    table.add_column("message")
    return table


class Progress:
    """The event sink the orchestrator reports to; draws according to `mode`."""

    def __init__(
        self,
        sites: Sequence[str] = (),
        *,
        mode: ProgressMode,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], datetime] = _utcnow,
        refresh: float = 0.5,
        size: Callable[[], tuple[int, int]] | None = None,
        listeners: Sequence[ProgressListener] = (),
    ) -> None:
        self.mode: ProgressMode = mode
        self._listeners = tuple(listeners)
        self._stream = stream
        self._clock = clock
        self._wallclock = wallclock
        self._refresh = refresh
        self._size = size or _terminal_size
        self._start = clock()
        self._rows: dict[str, _Row] = {name: _Row(since=self._start) for name in sites}
        self._live: Live | None = None
        self._last_draw = float("-inf")
        self._closed = False
        self._stop = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    def start(self, run_id: str, sites: Sequence[str], run_dir: Path | None = None) -> None:
        """Announce the run and its sites; on a TTY, keep the table's clock moving.

        The redraw task is started only inside a running event loop, and ends at `close()`.
        """
        for listener in self._listeners:
            listener.start(run_id, sites, run_dir)
        for name in sites:
            self._rows.setdefault(name, _Row(since=self._clock()))
        where = f", outputs in {run_dir}" if run_dir is not None else ""
        if self.mode == "plain":
            self._line(RUN, "start", f"run {run_id}, {len(sites)} sites{where}")
        elif self.mode == "tty":
            self._stream.write(f"run {run_id}: {len(sites)} sites{where}\n")
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None and self._ticker is None:
                self._ticker = loop.create_task(self.run())
            self.draw()

    def phase(self, site: str | None, phase: str, state: str, message: str = "") -> None:
        """A site (None: the run as a whole) entered or left a phase."""
        for listener in self._listeners:
            listener.phase(site, phase, state, message)
        name = site or RUN
        row = self._rows.setdefault(name, _Row(since=self._clock()))
        now = self._clock()
        if row.phase != phase or state == "running":
            row.since = now
        row.until = None if state in ("running", "pending") else now
        row.phase, row.state, row.message = phase, state, message
        if self.mode == "plain":
            self._line(name, f"{phase} {state}", message)
        elif self.mode == "tty":
            self._maybe_draw()

    def note(self, site: str | None, message: str) -> None:
        """A message without a change of phase (a retry, a poll's answer)."""
        for listener in self._listeners:
            listener.note(site, message)
        name = site or RUN
        row = self._rows.setdefault(name, _Row(since=self._clock()))
        row.message = message
        if self.mode == "plain":
            self._line(name, row.phase, message)
        elif self.mode == "tty":
            self._maybe_draw()

    def finish(self, summary: Mapping[str, object]) -> None:
        """The run's outcome (its `--json` summary): printed by the CLI; listeners get it here."""
        for listener in self._listeners:
            listener.finish(summary)

    def _line(self, name: str, what: str, message: str) -> None:
        stamp = self._wallclock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        tail = f": {message}" if message else ""
        self._stream.write(f"{stamp} {name} {what}{tail}\n")
        self._stream.flush()

    def _shown(self, names: list[str], room: int) -> list[str]:
        """The rows that fit in `room` lines, trouble first when not all of them do."""
        if len(names) <= room:
            return names
        ranked = sorted(names, key=lambda n: _TROUBLE_RANK.get(self._rows[n].state, 2))
        return ranked[: room - 1]

    def _cells(self, name: str, now: float) -> tuple[Text, ...]:
        row = self._rows[name]
        spent = (now if row.until is None else row.until) - row.since
        return (
            Text(name),
            Text(row.phase),
            Text(_STATE_MARK.get(row.state, row.state), style=_STATE_STYLE.get(row.state, "")),
            Text(_elapsed(spent)),
            Text(row.message, no_wrap=True, overflow="ellipsis"),
        )

    def view(self) -> Group:
        """The table as rich draws it: fitted to the terminal's height, the run's row first."""
        _, height = self._size()
        now = self._clock()
        names = sorted(self._rows, key=lambda n: n != RUN)
        shown = self._shown(names, max(height - 3, 3))
        table = _table()
        for name in shown:
            table.add_row(*self._cells(name, now))
        lines: list[Table | Text] = [table]
        visible = set(shown)
        hidden = Counter(self._rows[n].state for n in names if n not in visible)
        if hidden:
            summary = ", ".join(f"{n} {s}" for s, n in sorted(hidden.items()))
            lines.append(_one_line(f"... {hidden.total()} more sites: {summary}"))
        lines.append(_one_line(f"elapsed {_elapsed(now - self._start)}"))
        return Group(*lines)

    def table(self) -> list[str]:
        """The view as plain lines at the terminal's size (pure given the rows and the clock)."""
        width, height = self._size()
        console = Console(file=io.StringIO(), width=width, height=height, color_system=None)
        with console.capture() as captured:
            console.print(self.view())
        return [line.rstrip() for line in captured.get().splitlines()]

    def _maybe_draw(self) -> None:
        if self._clock() - self._last_draw >= self._refresh:
            self.draw()

    def _live_view(self) -> Live:
        if self._live is None:
            console = Console(file=self._stream, force_terminal=True, highlight=False)
            # no redirection of sys.stdout/stderr: the view owns only the stream it was given
            self._live = Live(
                console=console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
                get_renderable=self.view,
            )
            self._live.start()
        return self._live

    def draw(self) -> None:
        """Redraw the table in place (TTY mode only, and not after `close()`)."""
        if self.mode != "tty" or (self._closed and self._live is not None):
            return
        self._live_view().refresh()
        self._last_draw = self._clock()

    async def run(self) -> None:
        """Keep the table's elapsed times moving; start as a task, ends at `close()`."""
        while not self._closed and self.mode == "tty":
            self.draw()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._refresh)

    def close(self) -> None:
        """A last draw, so the final state stays on screen."""
        if self._closed:
            return
        self._closed = True
        for listener in self._listeners:
            listener.close()
        self._stop.set()
        if self._ticker is not None and not self._ticker.done():
            self._ticker.cancel()
        if self.mode == "tty":
            self._live_view().stop()  # draws the rows once more and leaves them there


def make_progress(
    stream: TextIO, *, json_mode: bool = False, listeners: Sequence[ProgressListener] = ()
) -> Progress:
    """The view for `stream`, passing every call on to `listeners`; sites come by `start`."""
    return Progress(mode=choose_mode(stream, json_mode), stream=stream, listeners=listeners)
