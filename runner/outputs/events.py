"""`--events PATH|-`: the run as JSON lines, one object per event, for scripts and dashboards.

The live view is for eyes and `--json` is the end; a dashboard or a wrapper script wants each
phase change, failure and result the moment it happens, in a form that needs no parsing of
prose. This sink receives exactly the calls the live view receives (runner.outputs.progress
fans them out), so there is one place that knows when a phase changes. Each line is written
and flushed at once: a reader tailing the file sees it as it happens.

Every object has `event` (start, phase, note, failure, result), `time` (UTC, ISO 8601 with Z),
`site` (null for the run as a whole), `phase`, `state` and `detail`. The messages are the
ones the live view shows, which never hold a secret.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from runner.errors import BadInput

#: `--events -`: the events on stdout, and everything else the runner prints goes to stderr
STDOUT = "-"


def utc_stamp(now: datetime) -> str:
    """`2026-12-02T04:22:37.123Z`: what every JSON reader parses, with the zone unmistakable."""
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(UTC)


class EventStream:
    """Writes one JSON object per line to `stream`, flushed at every event."""

    def __init__(self, stream: TextIO, *, wallclock: Callable[[], datetime] = _now) -> None:
        self._stream = stream
        self._wallclock = wallclock
        self._run_id: str | None = None

    def emit(
        self,
        event: str,
        *,
        site: str | None = None,
        phase: str | None = None,
        state: str | None = None,
        detail: object = "",
    ) -> None:
        record = {
            "event": event,
            "time": utc_stamp(self._wallclock()),
            "run_id": self._run_id,
            "site": site,
            "phase": phase,
            "state": state,
            "detail": detail,
        }
        self._stream.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self._stream.flush()

    def start(self, run_id: str, sites: Sequence[str], run_dir: Path | None = None) -> None:
        self._run_id = run_id
        where = str(run_dir) if run_dir is not None else None
        self.emit("start", state="running", detail={"sites": list(sites), "run_dir": where})

    def phase(self, site: str | None, phase: str, state: str, message: str = "") -> None:
        self.emit("phase", site=site, phase=phase, state=state, detail=message)

    def note(self, site: str | None, message: str) -> None:
        self.emit("note", site=site, detail=message)

    def finish(self, summary: Mapping[str, object]) -> None:
        """The run's end: a failure event per failing site, then the result (the summary)."""
        failures = summary.get("failures")
        if isinstance(failures, Mapping):
            for site, why in failures.items():
                self.emit("failure", site=str(site), state="failed", detail=why)
        self.emit("result", state=str(summary.get("status")), detail=dict(summary))

    def close(self) -> None:
        """The stream belongs to whoever opened it (the CLI); it is only flushed here."""
        self._stream.flush()


@contextlib.contextmanager
def open_events(target: str | None) -> Iterator[TextIO | None]:
    """The stream `--events` names: None without one, stdout for `-`, else the file (new).

    A file that cannot be made is bad input, found before the run starts.
    """
    if target is None:
        yield None
        return
    if target == STDOUT:
        yield sys.stdout
        return
    try:
        stream = open(target, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise BadInput(f"--events {target}: cannot write it ({exc.strerror})") from None
    with stream:
        yield stream
