"""manifest.json, always last: it hashes every file the writers before it wrote."""

from __future__ import annotations

from pathlib import Path

from runner.outputs.manifest import MANIFEST_FILE, write_manifest
from runner.outputs.writers.base import OutputContext, Writer


class ManifestJson(Writer):
    name = "manifest"
    file = MANIFEST_FILE

    def write(self, context: OutputContext) -> Path:
        write_manifest(context.run_dir, context.result.state.run_id)
        return self.path(context)
