"""Reading an app's `config.yml` section, as the templates do (defaults when absent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def app_config(input_dir: Path, section: str, defaults: dict[str, Any]) -> dict[str, Any]:
    path = input_dir / "config.yml"
    if not path.exists():
        return dict(defaults)
    import yaml  # lazily: most controllers never read a config

    loaded = yaml.safe_load(path.read_text()) or {}
    values = loaded.get(section) or {}
    return {**defaults, **values}
