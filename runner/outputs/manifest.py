"""manifest.json: what a run produced, so anyone can check later that it is still that.

The size and sha256 of every file, relative paths, sorted, so two manifests diff cleanly.
Written last, after every other output, so that it lists them with their hashes.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from fcapi.files import is_temp_name, sha256_file
from runner.engine.checkpoint import STATE_FILE, utcnow
from runner.outputs.model import OutputModel

MANIFEST_FILE = "manifest.json"
#: never listed: the manifest cannot hash itself, and the state holds tokens and keeps changing
_NOT_LISTED = frozenset({MANIFEST_FILE, STATE_FILE})


class ManifestEntry(OutputModel):
    path: str
    size: int
    sha256: str


class Manifest(OutputModel):
    run_id: str
    created_at: datetime
    total_bytes: int
    files: list[ManifestEntry]


def build_manifest(run_dir: Path, run_id: str, now: datetime | None = None) -> Manifest:
    """Every regular file under `run_dir` (symlinks and temp leftovers skipped), sorted."""
    entries: list[ManifestEntry] = []
    for root, dirs, files in os.walk(run_dir, followlinks=False):
        dirs[:] = [d for d in dirs if not is_temp_name(d)]
        for name in files:
            path = Path(root) / name
            rel = path.relative_to(run_dir).as_posix()
            if rel in _NOT_LISTED or is_temp_name(name) or path.is_symlink():
                continue
            entries.append(
                ManifestEntry(path=rel, size=path.stat().st_size, sha256=sha256_file(path))
            )
    entries.sort(key=lambda e: e.path)
    return Manifest(
        run_id=run_id,
        created_at=now or utcnow(),
        total_bytes=sum(e.size for e in entries),
        files=entries,
    )


def write_manifest(run_dir: Path, run_id: str, now: datetime | None = None) -> Manifest:
    """Build and write the manifest; call it last, after every other output."""
    manifest = build_manifest(run_dir, run_id, now)
    manifest.write_json(run_dir / MANIFEST_FILE)
    return manifest
