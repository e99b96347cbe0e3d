"""The checkpoint writer of a run under way: every change on disk, bursts coalesced.

The state model and the file format are runner.engine.checkpoint; this is the writer a run's
phases share, so that a hundred sites writing at once never queue a hundred writes.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from runner.engine.checkpoint import RunState, state_path, state_snapshot, write_state


class Saver:
    """Writes the checkpoint after every change, coalescing bursts from many sites.

    `flush()` returns once a write that includes the caller's change is on disk, so the next
    step never starts before the file holds the last one (a project id, a token, a join). The
    state is copied to text in the event loop (a consistent snapshot) and written, with its
    fsync, in a thread; changes that arrive during a write share the next one. A hundred
    sites changing state at once thus cost a few writes, not a few hundred, and never block
    the loop the other sites run on.
    """

    def __init__(self, state: RunState, outdir: Path) -> None:
        self.state = state
        self.path = state_path(outdir, state.run_id)
        self._asked = 0
        self._written = 0
        self._changed = asyncio.Condition()
        self._writer: asyncio.Task[None] | None = None

    def mark(self) -> None:
        """Ask for a write without waiting: for records a crash may lose (phase timings).

        A failed write surfaces at the next `flush()`, which writes the same state again.
        """
        self._asked += 1
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())

    async def flush(self) -> None:
        self._asked += 1
        wanted = self._asked
        while self._written < wanted:
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write_pending())
            writer = self._writer
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._settled, wanted, writer))
            if writer.done() and self._written < wanted:
                error = writer.exception()
                if error is not None:
                    raise error  # the write failed (disk full, say): the run must know

    def _settled(self, wanted: int, writer: asyncio.Task[None]) -> bool:
        return self._written >= wanted or writer.done()

    async def _write_pending(self) -> None:
        try:
            while self._written < self._asked:
                covers = self._asked
                text = state_snapshot(self.state)
                await asyncio.to_thread(write_state, self.path, text)
                self._written = covers
                async with self._changed:
                    self._changed.notify_all()
        finally:
            async with self._changed:
                self._changed.notify_all()
