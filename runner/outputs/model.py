"""What every file a run leaves behind in JSON has in common.

A reader years later must be able to trust that the file says exactly what the model says:
unknown fields are refused when it is read back, and every such file is written the same way
(atomically, indented, ending in a newline, so two runs' files diff cleanly).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from fcapi.files import write_atomic


class OutputModel(BaseModel):
    """The base of the metrics and the manifest models."""

    model_config = ConfigDict(extra="forbid")

    def write_json(self, path: Path) -> Path:
        write_atomic(path, self.model_dump_json(indent=2) + "\n")
        return path
