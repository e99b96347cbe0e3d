"""`GET /status` of an engine app, read as the real controller must read it.

The engine's status carries nulls (`message`, `progress`, `state`, `destination`, `memo`),
objects for `smpc` and `dp`, and, when data is queued, comes as the status serialised to a JSON
string that bottle serves as `text/html`. So the body is parsed as JSON whatever its content
type, a JSON string inside is parsed once more, and null flags read as false.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

#: the memo of data sent without one, as the engine writes it (`str(None)`)
UNSET_MEMO = "None"


class StatusError(Exception):
    """A status body that is not a status; the message quotes what came."""


class EngineStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    available: bool = False
    finished: bool = False
    message: str | None = None
    progress: float | None = None
    state: str | None = None
    destination: str | None = None
    smpc: dict[str, Any] | None = None
    dp: dict[str, Any] | None = None
    memo: str | None = None

    @field_validator("available", "finished", mode="before")
    @classmethod
    def _null_is_false(cls, value: Any) -> Any:
        return False if value is None else value

    @field_validator("destination", "memo", "message", "state", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @property
    def wire_memo(self) -> str:
        """The memo the data travels under: the engine's "None" when the app set none."""
        return UNSET_MEMO if self.memo is None else self.memo

    def describe(self) -> str:
        """The app's state in words, for a deadline's message."""
        return f"state {self.state!r}, message {self.message!r}, progress {self.progress!r}"


def parse_status(text: str) -> EngineStatus:
    try:
        value: Any = json.loads(text)
        if isinstance(value, str):
            value = json.loads(value)
    except ValueError:
        raise StatusError(f"the app's status is not JSON: {text[:200]!r}") from None
    if not isinstance(value, dict):
        raise StatusError(f"the app's status is not a JSON object: {text[:200]!r}")
    try:
        return EngineStatus.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise StatusError(f"the app's status field {where}: {first['msg']}") from None
