"""The workflow file: what to run, with which data at which site, checked before anything runs.

A mistake found after the project exists costs a project, tokens and uploads, so every check
that can be made from the file and the inventory is made here, up front, and each kind of
mistake gets its own one-line message naming the file, the site and the field.

Format (TOML; relative paths are relative to the workflow file's folder):

    app = "mean-app"            # a new project each run; or: project_id = 123
                                # or several apps in order: apps = ["standardize", "mean-app"]
    config = "config.yml"       # the apps' config.yml, uploaded to every site (optional); in a
                                # workflow of several apps it holds every app's section
    deadline = "30m"            # for the whole run: 90s, 30m, 1h30m, or seconds as a number
    outdir = "runs"             # where <run-id>/ folders go (default "runs")
    sample_seconds = 2          # each host's resource use sampled this often (0: never)

    [unpack]                    # bounds on what the result zips may unpack (optional)
    member = "1GiB"             # one file of a zip
    zip = "1GiB"                # one zip
    run = "4GiB"                # every zip of the run together

    [sites.alpha]
    files = ["data/alpha.csv", { path = "data/a2.csv", as = "data.csv" }]

    [sites.beta]
    host_files = ["/srv/hospital/cohort.csv"]      # on beta's host; never leaves it
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fcapi.files import UnreadableFile, read_bounded
from fedinfra.inventory import Inventory, check_site_name
from fedinfra.problems import first_problem, one_line
from runner.collect.unpack import UnpackLimits
from runner.engine.checkpoint import digest_json
from runner.errors import BadInput

#: the stack config key naming the default workflow file
STACK_CONFIG_KEY = "fedstack:workflow"
CONFIG_NAME = "config.yml"
DEFAULT_OUTDIR = "runs"

_DURATION = re.compile(r"(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?")
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: a workflow file is a page of TOML; a bigger one is a mistake (or /dev/zero), not read whole
MAX_WORKFLOW_BYTES = 1 << 20
#: the longest run a deadline may ask for: a week (longer is a typo, and overflows timers)
MAX_DEADLINE = 7 * 24 * 3600.0
#: app slugs on FeatureCloud are short words
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")
#: the most apps one workflow may chain (FeatureCloud's own workflows have a handful)
MAX_STEPS = 64


class WorkflowError(BadInput):
    """A workflow file that cannot be run; one line, naming the file, the site and the field."""


def parse_duration(value: object) -> float:
    """`"90s"`, `"30m"`, `"1h30m"` or a number of seconds, as seconds (positive)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30m, 1h30m or 90s")
    if isinstance(value, int):
        seconds = float(min(value, int(MAX_DEADLINE) + 1))  # a 400-digit int overflows float()
    elif isinstance(value, float):
        seconds = value
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if not value.strip() or match is None:
            raise ValueError(f"{value[:40]!r} is not a duration like 30m, 1h30m or 90s")
        h, m, s = (int(g) if g else 0 for g in match.groups())
        seconds = float(h * 3600 + m * 60 + s)
    else:
        raise ValueError("expected a duration like 30m, 1h30m or 90s")
    if not math.isfinite(seconds):
        raise ValueError("the deadline must be a finite duration")
    if seconds <= 0:
        raise ValueError("the deadline must be longer than zero")
    if seconds > MAX_DEADLINE:
        raise ValueError(f"the deadline must be at most {MAX_DEADLINE / 86400:g} days")
    return seconds


def _file_ref(value: object) -> object:
    """A bare string is shorthand for `{path = ...}`."""
    return {"path": value} if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FileRef(_Strict):
    path: str = Field(min_length=1)
    #: the name the app expects (e.g. `data.csv`); default: the file's own name
    as_name: str | None = Field(default=None, alias="as")

    @field_validator("path")
    @classmethod
    def _one_line(cls, path: str) -> str:
        if any(c in path for c in "\n\r\x00"):
            raise ValueError("a path must not hold a newline or NUL")
        return path

    @field_validator("as_name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        if name is not None and (not _FILE_NAME.fullmatch(name) or name in {".", ".."}):
            raise ValueError(
                f"'as' must be a plain file name (letters, digits, '.', '_', '-'), got {name!r}"
            )
        return name

    @property
    def target(self) -> str:
        return self.as_name or PurePosixPath(self.path).name


FileList = list[Annotated[FileRef, BeforeValidator(_file_ref)]]


class SiteFiles(_Strict):
    files: FileList = Field(default_factory=list)
    host_files: FileList = Field(default_factory=list)

    @field_validator("host_files")
    @classmethod
    def _absolute(cls, refs: list[FileRef]) -> list[FileRef]:
        for ref in refs:
            if not ref.path.startswith("/"):
                raise ValueError(f"a path on the site's host must be absolute, got {ref.path!r}")
        return refs

    @model_validator(mode="after")
    def _data_and_unique_names(self) -> SiteFiles:
        if not self.files and not self.host_files:
            raise ValueError("no data: give files (local) or host_files (on the site's host)")
        seen: set[str] = set()
        for ref in [*self.files, *self.host_files]:
            if not _FILE_NAME.fullmatch(ref.target) or ref.target in {".", ".."}:
                raise ValueError(
                    f"{ref.path[:80]!r} would arrive as {ref.target[:40]!r}, not a plain file "
                    "name (letters, digits, '.', '_', '-'); rename it with "
                    '{ path = "...", as = "data.csv" }'
                )
            if ref.target == CONFIG_NAME:
                raise ValueError(
                    f"{ref.path!r} would arrive as {CONFIG_NAME}, which is the app's config; "
                    "use the top-level 'config' key"
                )
            if ref.target in seen:
                raise ValueError(
                    f"two files would arrive as {ref.target!r}; rename one with "
                    '{ path = "...", as = "other.csv" }'
                )
            seen.add(ref.target)
        return self


def check_slug(app: str) -> str:
    """An app slug as FeatureCloud spells them, or ValueError."""
    if not _SLUG.fullmatch(app):
        raise ValueError(
            f"{app[:40]!r} is not an app slug (letters, digits, '.', '_', '-', '/'; at most 128)"
        )
    return app


Slug = Annotated[str, AfterValidator(check_slug)]


class WorkflowSpec(_Strict):
    """The file as written, before it is checked against the inventory and the disk.

    `apps` is a workflow of several apps, in order, each step's output the next step's input
    (a FeatureCloud project's workflow); `app` is the one-step spelling of the same.
    """

    app: Slug | None = Field(default=None, min_length=1)
    apps: list[Slug] | None = Field(default=None, max_length=MAX_STEPS)
    project_id: int | None = Field(default=None, gt=0, lt=2**63)
    config: str | None = Field(default=None, min_length=1, max_length=4096)
    deadline: Annotated[float, BeforeValidator(parse_duration)] = 3600.0
    outdir: str = Field(default=DEFAULT_OUTDIR, min_length=1, max_length=4096)
    unpack: UnpackLimits = Field(default_factory=UnpackLimits)
    sample_seconds: float = Field(default=2.0, ge=0, le=3600)
    sites: dict[str, SiteFiles] = Field(min_length=1)

    @field_validator("apps")
    @classmethod
    def _not_with_app(cls, apps: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if apps is not None and info.data.get("app") is not None:
            raise ValueError("give app (one app) or apps (a list of apps, in order), not both")
        if apps == []:
            raise ValueError("an empty list names no app; give at least one app slug")
        return apps

    @field_validator("sites")
    @classmethod
    def _site_names(cls, sites: dict[str, SiteFiles]) -> dict[str, SiteFiles]:
        for name in sites:
            try:
                check_site_name(name)
            except ValueError as exc:
                raise ValueError(f"site name {name[:40]!r} {exc}") from None
        return sites

    @model_validator(mode="after")
    def _app_xor_project(self) -> WorkflowSpec:
        if self.slugs and self.project_id is not None:
            raise ValueError(
                "give app or apps (a new project each run) or project_id (an existing one), "
                "not both"
            )
        if not self.slugs and self.project_id is None:
            raise ValueError(
                "give exactly one of app (or apps: a new project each run) and project_id "
                "(an existing one)"
            )
        return self

    @property
    def slugs(self) -> list[str]:
        """The workflow's apps in order, however the file spells them (none: a project id)."""
        if self.apps is not None:
            return list(self.apps)
        return [self.app] if self.app is not None else []


class LocalFile(_Strict):
    path: Path
    name: str
    size: int


class HostFile(_Strict):
    path: str
    name: str


class SitePlan(_Strict):
    site: str
    fc_user: str
    coordinator: bool
    local: list[LocalFile]
    host: list[HostFile]


class Workflow(_Strict):
    """A workflow that passed every check, with paths resolved: what the runner executes."""

    source: Path
    #: the project's workflow, app slugs in order (empty for an existing project)
    apps: tuple[str, ...]
    project_id: int | None
    config: Path | None
    deadline_seconds: float
    outdir: Path
    unpack: UnpackLimits
    #: how often each host's resource use is sampled (runner.engine.sampler); 0: never
    sample_seconds: float = 2.0
    coordinator: str
    sites: dict[str, SitePlan]
    digest: str

    @property
    def app(self) -> str | None:
        """The first step's app: what callers that name one app read."""
        return self.apps[0] if self.apps else None


def _where(source: Path, loc: tuple[int | str, ...]) -> str:
    """`site 'beta', field files[1].as` from a pydantic error location."""
    parts = [p for p in loc if p not in ("function-after[_file_ref()]",)]
    site = ""
    if len(parts) >= 2 and parts[0] == "sites":
        site = f"site {parts[1]!r}, "
        parts = parts[2:]
    field = ""
    for part in parts:
        if isinstance(part, int):
            field += f"[{part}]"
        elif not str(part).startswith(("function-", "json-or-python")):
            field += ("." if field else "") + str(part)
    if not field:
        return f"{source}: {site.removesuffix(', ')}" if site else str(source)
    return f"{source}: {site}field {field}"


def _invalid(source: Path, exc: ValidationError) -> WorkflowError:
    problem = first_problem(exc)
    if problem.kind == "extra_forbidden":
        return WorkflowError(f"{_where(source, problem.loc)}: {_unknown_key(problem.loc)}")
    return WorkflowError(one_line(exc, lambda p: _where(source, p.loc), count_more=False))


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    """Which keys the level of the unknown one knows: the top, a site, or a file entry."""
    if len(loc) >= 5:
        return "unknown key (known: path, as)"
    if len(loc) >= 3:
        return "unknown key (known: files, host_files)"
    if len(loc) == 2 and loc[0] == "unpack":
        return "unknown key (known: member, zip, run)"
    return (
        "unknown key (known: app, apps, project_id, config, deadline, outdir, unpack, "
        "sample_seconds, sites)"
    )


def read_spec(path: Path) -> WorkflowSpec:
    """Parse and schema-check the file (no inventory, no disk beyond the file itself)."""
    raw = read_workflow_bytes(path)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise WorkflowError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkflowError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise WorkflowError(f"{path}: not valid TOML: nested too deeply") from None
    try:
        return WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        raise _invalid(path, exc) from None
    except RecursionError:
        raise WorkflowError(f"{path}: nested too deeply to be a workflow") from None


def read_workflow_bytes(path: Path) -> bytes:
    """The file's bytes (`fcapi.files.read_bounded`), each refusal worded for a workflow."""
    try:
        return read_bounded(path, MAX_WORKFLOW_BYTES)
    except UnreadableFile as exc:
        raise WorkflowError(f"{path}: {_WORKFLOW_REFUSALS[exc.reason].format(e=exc)}") from None


_WORKFLOW_REFUSALS = {
    "missing": "workflow file not found",
    "stat": "cannot read the workflow file: {e.detail}",
    "read": "cannot read the workflow file: {e.detail}",
    "folder": "is a folder, not a workflow file",
    "special": "not a regular file (a FIFO or a device?)",
    "too_big": f"{{e.size}} bytes, over {MAX_WORKFLOW_BYTES} for a workflow file",
    "grew": f"over {MAX_WORKFLOW_BYTES} bytes for a workflow file",
}


def _local_file(source: Path, site: str, field: str, ref: FileRef) -> LocalFile:
    where = f"{source}: site {site!r}, field {field}"
    path = Path(ref.path).expanduser()
    if not path.is_absolute():
        path = source.parent / path
    if not path.exists():
        raise WorkflowError(f"{where}: {path} does not exist")
    if not path.is_file():
        raise WorkflowError(f"{where}: {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise WorkflowError(f"{where}: {path} is not readable")
    return LocalFile(path=path.resolve(), name=ref.target, size=path.stat().st_size)


def check_against(spec: WorkflowSpec, inventory: Inventory, source: Path) -> Workflow:
    """Check the spec against the inventory and the local disk; resolve every path."""
    coordinator = _check_sites(spec, inventory, source)
    plans: dict[str, SitePlan] = {}
    for entry in inventory.sites:
        files = spec.sites[entry.name]
        local = [
            _local_file(source, entry.name, f"files[{i}]", ref) for i, ref in enumerate(files.files)
        ]
        host = [HostFile(path=ref.path, name=ref.target) for ref in files.host_files]
        plans[entry.name] = SitePlan(
            site=entry.name,
            fc_user=entry.fc_user,
            coordinator=entry.role == "coordinator",
            local=local,
            host=host,
        )
    return Workflow(
        source=source,
        apps=tuple(spec.slugs),
        project_id=spec.project_id,
        config=_config_file(spec, source),
        deadline_seconds=spec.deadline,
        outdir=writable_folder(Path(spec.outdir), source.parent, f"{source}: field outdir"),
        unpack=spec.unpack,
        sample_seconds=spec.sample_seconds,
        coordinator=coordinator,
        sites=plans,
        digest=workflow_digest(spec),
    )


def _check_sites(spec: WorkflowSpec, inventory: Inventory, source: Path) -> str:
    """Every site of the inventory named, no other; the coordinator's name."""
    known = [s.name for s in inventory.sites]
    unknown = sorted(set(spec.sites) - set(known))
    if unknown:
        raise WorkflowError(
            f"{source}: site {unknown[0]!r}, field sites: not in the inventory of stack "
            f"{inventory.stack!r} (its sites: {', '.join(known)})"
        )
    missing = [n for n in known if n not in spec.sites]
    if missing:
        raise WorkflowError(
            f"{source}: field sites: no data for "
            + ", ".join(repr(n) for n in missing)
            + f" (every site of stack {inventory.stack!r} must be named)"
        )
    coordinators = [s.name for s in inventory.sites if s.role == "coordinator"]
    if len(coordinators) != 1:  # the inventory model guarantees it; a copy may not
        raise WorkflowError(
            f"{source}: the inventory must have exactly one coordinator, found {len(coordinators)}"
        )
    return coordinators[0]


def _config_file(spec: WorkflowSpec, source: Path) -> Path | None:
    if spec.config is None:
        return None
    config_path = Path(spec.config).expanduser()
    if not config_path.is_absolute():
        config_path = source.parent / config_path
    if not config_path.is_file():
        what = "does not exist" if not config_path.exists() else "is not a regular file"
        raise WorkflowError(f"{source}: field config: {config_path} {what}")
    if not os.access(config_path, os.R_OK):
        raise WorkflowError(f"{source}: field config: {config_path} is not readable")
    return config_path.resolve()


def writable_folder(outdir: Path, base: Path, where: str) -> Path:
    """`outdir` (relative to `base`), if a folder can be made there: refused now, not on the
    first write. The nearest existing folder is probed with a temporary folder (removed at
    once), since permission bits do not tell (root, a read-only mount, /proc)."""
    if any(c in str(outdir) for c in "\n\r\x00"):
        raise WorkflowError(f"{where}: the path holds a newline or NUL")
    try:
        outdir = outdir.expanduser()
        return _probe_folder(outdir if outdir.is_absolute() else base / outdir, where)
    except RuntimeError as exc:  # ~user of no such user
        raise WorkflowError(f"{where}: cannot use {str(outdir)[:200]}: {exc}") from None
    except OSError as exc:
        raise WorkflowError(f"{where}: cannot use {str(outdir)[:200]}: {exc.strerror}") from None


def _probe_folder(outdir: Path, where: str) -> Path:
    if outdir.exists() and not outdir.is_dir():
        raise WorkflowError(f"{where}: {outdir} exists and is not a folder")
    existing = next(p for p in (outdir, *outdir.parents) if p.exists())
    if not existing.is_dir():
        raise WorkflowError(f"{where}: cannot write under {existing}: not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".fedstack-probe-"))
    except OSError as exc:
        raise WorkflowError(f"{where}: cannot write under {existing}: {exc.strerror}") from None
    return outdir


def load_workflow(path: Path, inventory: Inventory) -> Workflow:
    """Read, schema-check and inventory-check a workflow file; raise `WorkflowError`."""
    spec = read_spec(path)
    try:
        return check_against(spec, inventory, path)
    except (OSError, ValueError, RuntimeError) as exc:  # a name too long, a NUL, ~nobody
        raise WorkflowError(f"{path}: a path it names cannot be used: {_os_reason(exc)}") from None


def _os_reason(exc: OSError | ValueError | RuntimeError) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror} ({str(exc.filename)[:80]!r})"
    return str(exc)


def workflow_digest(spec: WorkflowSpec) -> str:
    """What a resume compares: the file's meaning, not its whitespace or comments.

    `apps = ["x"]` means `app = "x"`, and a file without `apps` digests as it did before the
    key existed, so that a run started with either spelling (or before) still resumes.
    """
    # how often hosts are sampled changes no step of the run: a resume may change it
    data = spec.model_dump(mode="json", by_alias=True, exclude={"app", "apps", "sample_seconds"})
    slugs = spec.slugs
    if len(slugs) > 1:
        data["apps"] = slugs
    else:
        data["app"] = slugs[0] if slugs else None
    return digest_json(data)


def workflow_path_from_config(config: Mapping[str, Any], project_dir: Path) -> Path | None:
    """The stack config's default workflow file (`fedstack:workflow`), or None when unset.

    Accepts the Automation API's `{key: ConfigValue}` as well as plain values, and the key
    with or without its `fedstack:` namespace; a relative path is taken from the project dir,
    where `Pulumi.<stack>.yaml` lives.
    """
    value: Any = config.get(STACK_CONFIG_KEY, config.get(STACK_CONFIG_KEY.split(":", 1)[1]))
    value = getattr(value, "value", value)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WorkflowError(f"stack config {STACK_CONFIG_KEY}: expected a path, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else project_dir / path
