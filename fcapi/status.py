"""The project state machine of featurecloud.ai, as pure data and functions.

The emulator enforces it and the client uses it to tell a terminal status from a passing one,
so both read the same table.
"""

from __future__ import annotations

from fcapi.models import ProjectStatus as S

#: status a `PUT /api/projects/{id}/` may request, from each status
REQUESTABLE: dict[S, frozenset[S]] = {
    S.NEW: frozenset({S.READY, S.INIT}),
    S.INIT: frozenset({S.READY, S.INIT}),
    S.READY: frozenset({S.READY, S.PREPARE}),
    S.PREPARE: frozenset({S.READY}),
    S.RUNNING: frozenset({S.STOPPED}),  # requested as "shutdown"
    S.FINISHED: frozenset({S.READY}),
    S.ERROR: frozenset({S.READY}),
    S.FAILED: frozenset({S.READY}),
    S.STOPPED: frozenset({S.READY}),
}

#: the platform moves these itself (controllers report), no client asks for them
AUTOMATIC: dict[S, frozenset[S]] = {
    S.PREPARE: frozenset({S.RUNNING}),
    S.RUNNING: frozenset({S.FINISHED, S.ERROR, S.FAILED}),
}

TERMINAL: frozenset[S] = frozenset({S.FINISHED, S.ERROR, S.FAILED, S.STOPPED})
FAILED: frozenset[S] = frozenset({S.ERROR, S.FAILED})

#: what a client sends to ask for a status, where it differs from the status reached
REQUEST_WORD: dict[S, str] = {S.STOPPED: "shutdown"}


def parse_status(value: str) -> S:
    """Map a status word (including the request word `shutdown`) to a status."""
    if value == "shutdown":
        return S.STOPPED
    return S(value)


def may_request(current: S, wanted: S) -> bool:
    """Whether a client may ask to move a project from `current` to `wanted`."""
    return wanted in REQUESTABLE.get(current, frozenset())


def is_terminal(status: S | str) -> bool:
    return S(status) in TERMINAL if status != "shutdown" else True


def is_failure(status: S | str) -> bool:
    return S(status) in FAILED
