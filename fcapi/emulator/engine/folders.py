"""App folders registered under a slug and an id: which app a workflow step's slug runs.

A controller learns them from `--app SLUG=ID:DIR` and from `apps.json` in its data dir (read
at each run, as site_info.json is, so a client can register an app with a controller it did
not start); the website learns the slug and id from `--app` and lists the app. A registered
folder replaces the in-process app of the same slug.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fcapi.files import write_atomic

APPS_FILE = "apps.json"
#: what makes a folder an app folder of FeatureCloud's template
REQUIRED = ("main.py", "requirements.txt")


@dataclass(frozen=True)
class AppFolder:
    slug: str
    app_id: int
    path: Path

    def to_json(self) -> dict[str, object]:
        return {"slug": self.slug, "id": self.app_id, "path": str(self.path)}


def check_folder(path: Path) -> Path:
    """The folder, absolute, if it holds what an app image is built from; else ValueError."""
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"app folder {path} does not exist")
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise ValueError(f"app folder {path} has no {' and no '.join(missing)}")
    return path


def parse_spec(spec: str) -> AppFolder:
    """`SLUG=ID:DIR` (the folder may be left out for the website, which needs no folder)."""
    slug, eq, rest = spec.partition("=")
    app_id, _, folder = rest.partition(":")
    if not eq or not slug or not app_id.strip().isdigit():
        raise ValueError(f"--app {spec!r}: expected SLUG=ID:DIR, e.g. mean-app=66:apps/mean")
    return AppFolder(slug, int(app_id), check_folder(Path(folder)) if folder else Path())


def load_folders(data_dir: Path) -> dict[str, AppFolder]:
    """The folders `apps.json` in a controller's data dir registers, by slug."""
    path = data_dir / APPS_FILE
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        found = [AppFolder(str(e["slug"]), int(e["id"]), Path(e["path"])) for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a list of {{slug, id, path}}: {exc}") from None
    return {f.slug: f for f in found}


def write_folders(data_dir: Path, folders: list[AppFolder]) -> None:
    text = json.dumps([f.to_json() for f in folders], indent=2)
    write_atomic(data_dir / APPS_FILE, text, 0o644)
