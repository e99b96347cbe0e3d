"""SMPC as the controller does it: every client's piece for a memo, one package to the coordinator.

The real controllers secret-share the pieces among themselves; the emulator's stand-in for
that exchange is each participant's controller sending its piece to the coordinator's
controller in an envelope, which only a controller ever opens. The app sees what it sees on
the platform: one JSON package, the pieces added (or multiplied) element by element, summed
in the order of the client list so that a run is repeatable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAGIC = b"\0fedstack-smpc-piece\0"


def envelope(piece: bytes, operation: str) -> bytes:
    return MAGIC + json.dumps({"operation": operation, "piece": piece.decode()}).encode()


def opened(data: bytes) -> tuple[bytes, str] | None:
    """(piece, operation) when `data` is a piece in its envelope, else None."""
    if not data.startswith(MAGIC):
        return None
    body = json.loads(data[len(MAGIC) :])
    return str(body["piece"]).encode(), str(body["operation"])


def combine(a: Any, b: Any, operation: str) -> Any:
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise ValueError(f"SMPC pieces of different lengths ({len(a)} and {len(b)})")
        return [combine(x, y, operation) for x, y in zip(a, b, strict=True)]
    if operation == "multiply":
        return a * b
    if operation == "add":
        return a + b
    raise ValueError(f"SMPC operation {operation!r} is neither add nor multiply")


@dataclass
class Aggregator:
    """The coordinator's pieces, by memo, until every client has sent its own."""

    clients: list[str]
    pieces: dict[str, dict[str, tuple[Any, str]]] = field(default_factory=dict)

    def add(self, memo: str, sender: str, piece: bytes, operation: str) -> bytes | None:
        """The package once the last piece for `memo` is in, else None."""
        got = self.pieces.setdefault(memo, {})
        got[sender] = (json.loads(piece), operation)
        if not all(c in got for c in self.clients):
            return None
        del self.pieces[memo]
        values = [got[c] for c in self.clients]
        total = values[0][0]
        for value, op in values[1:]:
            total = combine(total, value, op)
        return json.dumps(total).encode()
