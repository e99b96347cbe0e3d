"""The study file: a matrix of runs, checked whole before the first cell runs.

A sweep costs minutes per cell, so a typo in the tenth cell's parameters must not surface
after nine runs; every key is checked here and a mistake is one line naming the file and
the key. Format (TOML; relative paths are relative to the study file's folder):

    name = "mean-sites"          # default: the file's stem; the folder <outdir>/<name>/
    apps = ["mean-app"]          # app slugs, one axis of the matrix
    configs = ["a.yml", "b.yml"] # app config.yml files, one axis (default: the app's own)
    sites = [2, 3]               # site counts, one axis
    splits = ["balanced"]        # how the data is cut into site shares: balanced, unbalanced
    repeats = 2                  # runs of each combination
    centralized = true           # also run each cell's twin: one site, the pooled data
    parallel = 1                 # cells at once; cells running together never share a site
    deadline = "15m"             # per cell
    outdir = "fedstack-studies"

    [data]                       # default: the demo's mean values, one row per site
    table = "pooled.csv"         # a CSV cut into the sites' shares
    header = true                # its first row is a header, kept in every share
    layout = "rows"              # rows: a share is rows; values: a share is one row of them

    [target]                     # default: the embedded demo federation
    inventory = "inventory.json" # the sites a cell picks from
    env_file = ".env"            # their passwords
    website_url = "https://featurecloud.ai"
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fcapi.files import UnreadableFile, read_bounded
from fedinfra.problems import Problem, one_line
from runner.errors import BadInput
from runner.plan.workflow import parse_duration

#: a study file is a page of TOML
MAX_STUDY_BYTES = 1 << 20
#: more cells than this is a typo in an axis, not a study
MAX_CELLS = 10_000
MAX_SITES = 500
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")
DEFAULT_OUTDIR = "fedstack-studies"

Split = Literal["balanced", "unbalanced"]


def _balanced() -> list[Split]:
    return ["balanced"]


class StudyError(BadInput):
    """A study file that cannot be swept; one line naming the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    table: str = Field(min_length=1)
    header: bool = False
    layout: Literal["rows", "values"] = "rows"


class TargetSpec(_Strict):
    inventory: str = Field(min_length=1)
    env_file: str | None = None
    website_url: str = Field(min_length=1)


class StudySpec(_Strict):
    name: str | None = None
    apps: list[str] = Field(min_length=1)
    configs: list[str] = Field(default_factory=list)
    sites: list[int] = Field(min_length=1)
    splits: list[Split] = Field(default_factory=_balanced, min_length=1)
    repeats: int = Field(default=1, ge=1, le=100)
    centralized: bool = False
    parallel: int = Field(default=1, ge=1, le=16)
    deadline: float = 15 * 60.0
    outdir: str = DEFAULT_OUTDIR
    data: DataSpec | None = None
    target: TargetSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None and not _NAME.fullmatch(name):
            raise ValueError("must be letters, digits, '_' or '-' (a folder name)")
        return name

    @field_validator("apps")
    @classmethod
    def _slugs(cls, apps: list[str]) -> list[str]:
        for app in apps:
            if not _SLUG.fullmatch(app):
                raise ValueError(f"{app[:40]!r} is not an app slug")
        if len(set(apps)) != len(apps):
            raise ValueError("names an app twice")
        return apps

    @field_validator("sites")
    @classmethod
    def _site_counts(cls, sites: list[int]) -> list[int]:
        if any(not 1 <= n <= MAX_SITES for n in sites):
            raise ValueError(f"every site count must be between 1 and {MAX_SITES}")
        if len(set(sites)) != len(sites):
            raise ValueError("names a site count twice")
        return sites

    @field_validator("splits", "configs")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("names a value twice")
        return values

    @field_validator("deadline", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)


class Study(BaseModel):
    """A checked study: the spec, its file, and its paths resolved."""

    model_config = ConfigDict(frozen=True)

    spec: StudySpec
    source: Path
    name: str
    folder: Path
    configs: list[Path]
    table: Path | None
    inventory: Path | None
    env_file: Path | None


_REFUSED = {
    "missing": "no such study file",
    "folder": "a folder, not a study file",
    "special": "not a regular file",
    "too_big": f"bigger than {MAX_STUDY_BYTES} bytes: not a study file",
}


def _where(source: Path, problem: Problem) -> str:
    key = ".".join(str(p) for p in problem.loc if not str(p).startswith("function-"))
    return f"{source}: key {key}" if key else str(source)


def read_study_spec(path: Path) -> StudySpec:
    try:
        raw = read_bounded(path, MAX_STUDY_BYTES)
        data = tomllib.loads(raw.decode("utf-8"))
    except UnreadableFile as exc:
        raise StudyError(f"{path}: {_REFUSED.get(exc.reason, 'cannot read it')}") from None
    except UnicodeDecodeError:
        raise StudyError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML: {exc}") from None
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        raise StudyError(one_line(exc, lambda p: _where(path, p), plain=True)) from None


def _existing(source: Path, key: str, value: str) -> Path:
    path = (source.parent / value).resolve()
    if not path.is_file():
        raise StudyError(f"{source}: key {key}: no such file {path}")
    return path


def load_study(path: Path, outdir: Path | None = None) -> Study:
    """Read and check a study file and every file it names; raise `StudyError`."""
    source = path.resolve()
    spec = read_study_spec(path)
    configs = [_existing(path, f"configs.{i}", c) for i, c in enumerate(spec.configs)]
    table = _existing(path, "data.table", spec.data.table) if spec.data else None
    inventory = env_file = None
    if spec.target is not None:
        inventory = _existing(path, "target.inventory", spec.target.inventory)
        if spec.target.env_file is not None:
            env_file = _existing(path, "target.env_file", spec.target.env_file)
    if spec.data is None and spec.splits != ["balanced"]:
        raise StudyError(
            f"{path}: key splits: the demo's values have one row per site; "
            "name a [data] table to split it"
        )
    name = spec.name or source.stem
    if not _NAME.fullmatch(name):
        raise StudyError(f"{path}: key name: the file's stem {name!r} is no folder name; set name")
    base = outdir.resolve() if outdir is not None else (source.parent / spec.outdir).resolve()
    cells = (
        len(spec.apps) * max(len(configs), 1) * len(spec.sites) * len(spec.splits) * spec.repeats
    )
    if cells > MAX_CELLS:
        raise StudyError(f"{path}: the matrix has {cells} cells, more than {MAX_CELLS}")
    return Study(
        spec=spec,
        source=source,
        name=name,
        folder=base / name,
        configs=configs,
        table=table,
        inventory=inventory,
        env_file=env_file,
    )
