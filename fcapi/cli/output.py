"""What a command prints: its result on stdout (text lines or one JSON document), its
progress on stderr, so that `--json` output can be piped into a script untouched."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

PROG = "fcapi"
"""the name every line on stderr starts with"""


class Out:
    """Results to stdout (text or one JSON document); progress and errors to stderr."""

    def __init__(self, as_json: bool, stdout: TextIO, stderr: TextIO) -> None:
        self.as_json = as_json
        self.stdout = stdout
        self.stderr = stderr

    def result(self, data: Any, lines: Sequence[str]) -> None:
        if self.as_json:
            self.stdout.write(json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n")
        else:
            for line in lines:
                self.stdout.write(line + "\n")
        self.stdout.flush()

    def progress(self, message: str) -> None:
        self.stderr.write(f"{PROG}: {message}\n")
        self.stderr.flush()


def jsonable(data: Any) -> Any:
    """Models, paths and containers of them as plain JSON values."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, dict):
        return {k: jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [jsonable(v) for v in data]
    if isinstance(data, Path):
        return str(data)
    return data
