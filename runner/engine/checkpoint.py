"""The run's state on disk, so that a killed run resumes where it stopped.

`<outdir>/<run-id>/state.json` is rewritten atomically (0600: it holds the single-use project
tokens) after every step that changed something outside this process. A resume reloads it and
refuses when the workflow or the inventory is no longer the one the run started with, because
continuing a project with other data or other sites would give results nobody asked for. The
project id is recorded the moment it exists, and the intent to create one before that
(`project_create_started_at`): a resume that finds the intent but no id looks the project up by
its name, `project_name(run_id)`, before it creates one, so it never makes a second project.

Each start or resume is an `Attempt`. A resume moves what the attempts before it left unfinished
or failed (site errors, phases failed or cut off) into their `Attempt` record and clears it
from the sites and phases, which thereby always say how the run stands now: a resume that
succeeds is a completed run with a failed attempt in its history, not a failed run.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    SecretStr,
    ValidationError,
    field_serializer,
    model_validator,
)

from fcapi.files import write_atomic
from fedinfra.inventory import Inventory
from fedinfra.problems import Problem, one_line
from runner.errors import BadInput

STATE_VERSION = 1
STATE_FILE = "state.json"

#: `20261123-114501-ab12`: sorts by start time, readable, unique enough for one researcher
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")

PhaseState = Literal["pending", "running", "ok", "failed", "skipped"]
#: how an attempt ended; `killed`: it recorded no end (SIGKILL, power loss)
AttemptOutcome = Literal["completed", "failed", "interrupted", "killed"]

#: how an attempt that recorded no outcome ended, by the run's phase it left
_ENDED: dict[str, AttemptOutcome] = {
    "done": "completed",
    "failed": "failed",
    "interrupted": "interrupted",
}

#: every phase in the order a run reaches it, run-level ones included; orders tables and colours
PHASE_ORDER: tuple[str, ...] = (
    "connect",
    "controller",
    "project",
    "tokens",
    "join",
    "upload",
    "finalize",
    "prepare",
    "watch",
    "collect",
    "stop",
)


class CheckpointError(BadInput):
    """A state file that cannot be used; the message is one line for the CLI."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PhaseRecord(_Model):
    state: PhaseState = "pending"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str = ""

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class UploadedFile(_Model):
    """One file a site's controller received; the sha256 lets a resume skip it safely."""

    name: str
    source: str
    location: Literal["local", "host"]
    size: int = Field(ge=0)
    sha256: str | None = None  # None for host files: their bytes never reach the runner


class CollectedFile(_Model):
    kind: Literal["result", "log"]
    run: int
    step: int
    #: relative to the run dir, POSIX separators: the result zip or the log as downloaded
    path: str
    size: int = Field(ge=0)
    #: for a result: the files unpacked from the zip, relative to the run dir
    files: list[str] = Field(default_factory=list)


class SiteState(_Model):
    #: the single-use project token this site joins with; never printed
    token: SecretStr | None = None
    joined: bool = False
    uploaded: dict[str, UploadedFile] = Field(default_factory=dict)
    finalized: bool = False
    collected: list[CollectedFile] = Field(default_factory=list)
    collect_done: bool = False
    #: the newest run of a reused project the site's controller listed before this run
    #: started it: the earlier runs are other runs' results, not collected again
    runs_before: int | None = None
    phases: dict[str, PhaseRecord] = Field(default_factory=dict)
    error: str | None = None

    @field_serializer("token")
    def _token(self, token: SecretStr | None, info: FieldSerializationInfo) -> str | None:
        if token is None:
            return None
        if isinstance(info.context, dict) and info.context.get("reveal_secrets"):
            return token.get_secret_value()
        return "**********"

    def phase(self, name: str) -> PhaseRecord:
        return self.phases.setdefault(name, PhaseRecord())


class Attempt(_Model):
    """One start or resume of the run, and how it ended (kept as the run's history)."""

    number: int = Field(ge=1)
    started_at: datetime
    finished_at: datetime | None = None
    outcome: AttemptOutcome | None = None
    #: what failed or was cut off in this attempt, by site (or `project`), one line each
    failures: dict[str, str] = Field(default_factory=dict)


class StepApp(_Model):
    """One step of the project's workflow: its app's slug, and its id once looked up."""

    slug: str
    app_id: int | None = None


class RunState(_Model):
    version: int = STATE_VERSION
    run_id: str
    workflow_digest: str
    inventory_digest: str
    created_at: datetime
    updated_at: datetime
    #: the overall phase the run is in (or stopped in); `done` and `failed` are final
    phase: str = "start"
    #: the first step's app (a state of one app, from before `steps`, has only this)
    app: str | None = None
    #: the project's workflow, in order: what a resume must find the workflow file naming
    steps: list[StepApp] = Field(default_factory=list)
    #: set just before `create_project` is called: if a crash follows, the project may exist
    project_create_started_at: datetime | None = None
    project_id: int | None = None
    #: the project's status as the last attempt left it (`finished` for a completed run)
    project_status: str | None = None
    #: run-level phases (project, prepare, watch...), the same records as per site
    phases: dict[str, PhaseRecord] = Field(default_factory=dict)
    sites: dict[str, SiteState]
    attempts: list[Attempt] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _one_app_is_one_step(cls, data: Any) -> Any:
        """A state from before `steps` records its one app only: that app is its one step."""
        if isinstance(data, dict) and not data.get("steps") and data.get("app"):
            return {**data, "steps": [{"slug": data["app"]}]}
        return data

    @property
    def slugs(self) -> list[str]:
        """The workflow's apps in order (none: an existing project)."""
        return [s.slug for s in self.steps]

    def site(self, name: str) -> SiteState:
        try:
            return self.sites[name]
        except KeyError:
            raise CheckpointError(f"site {name!r} is not part of run {self.run_id}") from None

    def start_phase(self, site: str | None, phase: str, now: datetime | None = None) -> None:
        """Record a phase's start (site None: a run-level phase)."""
        record = self._record(site, phase)
        record.state = "running"
        record.started_at = now or utcnow()
        record.finished_at = None
        record.message = ""

    def finish_phase(
        self,
        site: str | None,
        phase: str,
        state: PhaseState = "ok",
        message: str = "",
        now: datetime | None = None,
    ) -> None:
        record = self._record(site, phase)
        at = now or utcnow()
        if record.started_at is None:
            record.started_at = at
        record.state = state
        record.finished_at = at
        record.message = message
        if state == "failed" and site is not None:
            self.sites[site].error = f"{phase}: {message}" if message else phase

    def _record(self, site: str | None, phase: str) -> PhaseRecord:
        if site is None:
            return self.phases.setdefault(phase, PhaseRecord())
        return self.site(site).phase(phase)

    def begin_attempt(self, now: datetime | None = None) -> Attempt:
        """Start a new attempt; what the last one left failed or unfinished becomes its history.

        A phase record the last attempt left running or failed goes back to pending (the new
        attempt either does the phase again or skips it as done), and every site's error is
        cleared, so the state says how the run stands rather than how it once went wrong.
        """
        at = now or utcnow()
        if not self.attempts and (self.phases or any(s.phases for s in self.sites.values())):
            # a state written before attempts were recorded: its one attempt, as it ended
            self.attempts.append(Attempt(number=1, started_at=self.created_at))
        if self.attempts:
            last = self.attempts[-1]
            if last.outcome is None:
                last.outcome = _ENDED.get(self.phase, "killed")
                last.finished_at = self.updated_at
            for where, what in self._left_unfinished().items():
                last.failures.setdefault(where, what)
        for site in self.sites.values():
            site.error = None
        for records in [self.phases, *(s.phases for s in self.sites.values())]:
            for phase, record in records.items():
                if record.state in ("running", "failed"):
                    records[phase] = PhaseRecord()
        attempt = Attempt(number=len(self.attempts) + 1, started_at=at)
        self.attempts.append(attempt)
        self.phase = "start"  # under way again: how the last attempt ended is its history now
        return attempt

    def _left_unfinished(self) -> dict[str, str]:
        """What an attempt left failed or cut off, by site (or `project`), one line each."""
        left: dict[str, str] = {}
        for name, site in [("project", None), *self.sites.items()]:
            records = self.phases if site is None else site.phases
            cut = [
                f"{p}: {r.message or 'cut off (the runner stopped)'}"
                for p, r in records.items()
                if r.state == "running" or (site is None and r.state == "failed")
            ]
            if site is not None and site.error:
                cut.insert(0, site.error)
            if cut:
                left[name] = "; ".join(cut)
        return left

    def end_attempt(
        self, outcome: AttemptOutcome, failures: dict[str, str], now: datetime | None = None
    ) -> None:
        """Record how the current attempt ended (before the final checkpoint)."""
        if not self.attempts:
            return
        attempt = self.attempts[-1]
        attempt.outcome = outcome
        attempt.finished_at = now or utcnow()
        attempt.failures = dict(sorted(failures.items()))

    def record_project(self, project_id: int) -> None:
        """Remember the project; a different id for the same run is a bug, never a second try."""
        if self.project_id is not None and self.project_id != project_id:
            raise CheckpointError(
                f"run {self.run_id} already has project {self.project_id}; refusing to switch "
                f"to project {project_id}"
            )
        self.project_id = project_id


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_run_id(now: datetime | None = None, suffix: str | None = None) -> str:
    """A run id that sorts by start time and still differs for two runs in one second."""
    at = (now or utcnow()).astimezone(UTC)
    tail = suffix if suffix is not None else secrets.token_hex(2)
    run_id = f"{at:%Y%m%d-%H%M%S}-{tail}"
    if not RUN_ID.match(run_id):
        raise ValueError(f"bad run id suffix {tail!r}: four hex digits expected")
    return run_id


def project_name(run_id: str) -> str:
    """The project's name on the website: it carries the run id so a lost id can be found."""
    return f"fedstack {run_id}"


def run_dir(outdir: Path, run_id: str) -> Path:
    return outdir / run_id


def state_path(outdir: Path, run_id: str) -> Path:
    return run_dir(outdir, run_id) / STATE_FILE


def digest_json(data: Any) -> str:
    """sha256 of canonical JSON: key order and whitespace do not change it."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def inventory_digest(inventory: Inventory) -> str:
    """Digest of what the run depends on in the inventory, not of the passwords.

    Credentials are left out so a rotated password does not block a resume; secrets elsewhere
    are masked, so the digest says nothing about them.
    """
    data = inventory.to_json_dict(reveal_secrets=False)
    data.pop("credentials", None)
    return digest_json(data)


def new_state(
    run_id: str,
    *,
    workflow_digest: str,
    inventory_digest: str,
    sites: Iterable[str],
    app: str | None = None,
    apps: Sequence[str] = (),
    project_id: int | None = None,
    now: datetime | None = None,
) -> RunState:
    """A new run's state; `apps` is its workflow in order (`app` alone: one step)."""
    at = now or utcnow()
    slugs = list(apps) if apps else ([app] if app is not None else [])
    return RunState(
        run_id=run_id,
        workflow_digest=workflow_digest,
        inventory_digest=inventory_digest,
        created_at=at,
        updated_at=at,
        app=slugs[0] if slugs else None,
        steps=[StepApp(slug=slug) for slug in slugs],
        project_id=project_id,
        sites={name: SiteState() for name in sites},
    )


def dump_state(state: RunState) -> str:
    """The file's text, tokens revealed: only for the 0600 state file."""
    return state.model_dump_json(indent=2, context={"reveal_secrets": True}) + "\n"


def state_snapshot(state: RunState, now: datetime | None = None) -> str:
    """Stamp the state and return the file's text: a consistent copy to write elsewhere."""
    state.updated_at = now or utcnow()
    return dump_state(state)


def write_state(path: Path, text: str) -> None:
    """The one way the state file is written: atomically, 0600 (it holds project tokens)."""
    write_atomic(path, text, mode=0o600)


def save_state(state: RunState, outdir: Path, now: datetime | None = None) -> Path:
    """Stamp and write the state at once, outside a run (a run writes through its Saver)."""
    path = state_path(outdir, state.run_id)
    write_state(path, state_snapshot(state, now))
    return path


def load_state(outdir: Path, run_id: str) -> RunState:
    if not RUN_ID.match(run_id):
        raise CheckpointError(
            f"{run_id!r} is not a run id (like 20261123-114501-ab12); see the folders in {outdir}"
        )
    path = state_path(outdir, run_id)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"no run {run_id} to resume: {path} does not exist") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
    try:
        state = RunState.model_validate_json(text)
    except ValidationError as exc:
        line = one_line(exc, lambda p: _damaged(path, p), count_more=False)
        raise CheckpointError(line) from None
    if state.run_id != run_id:
        raise CheckpointError(f"{path} belongs to run {state.run_id}, not {run_id}")
    return state


def _damaged(path: Path, problem: Problem) -> str:
    return f"{path} is damaged: {'.'.join(str(p) for p in problem.loc) or 'top level'}"


def resume_state(
    outdir: Path,
    run_id: str,
    *,
    workflow_digest: str,
    inventory_digest: str,
    outputs: Iterable[str] = (),
    apps: Sequence[str] | None = None,
) -> RunState:
    """Load a run to continue it, refusing when its inputs changed since it started.

    A run that finished is refused only once every one of its `outputs` (files relative to
    its folder) is there: killed between its last checkpoint and its outputs, it still owes
    them, and a resume writes them. `apps`, the workflow's apps in order, is compared first,
    so that a changed list of apps is named as such (the project's workflow is set already).
    """
    state = load_state(outdir, run_id)
    if apps is not None and state.slugs != list(apps):
        raise CheckpointError(
            f"cannot resume run {run_id}: it was started with {_apps_phrase(state.slugs)} and "
            f"the workflow file now names {_apps_phrase(apps)}; restore it or start a new run"
        )
    if state.workflow_digest != workflow_digest:
        raise CheckpointError(
            f"cannot resume run {run_id}: the workflow file changed since it started; "
            "restore it or start a new run"
        )
    if state.inventory_digest != inventory_digest:
        raise CheckpointError(
            f"cannot resume run {run_id}: the inventory changed since it started "
            "(pulumi up in between?); start a new run"
        )
    if state.phase == "done" and all((run_dir(outdir, run_id) / f).is_file() for f in outputs):
        raise CheckpointError(
            f"run {run_id} already finished; its results are in {outdir / run_id}"
        )
    return state


def _apps_phrase(slugs: Sequence[str]) -> str:
    if not slugs:
        return "an existing project (project_id)"
    return ("apps " if len(slugs) > 1 else "app ") + ", ".join(slugs)


def list_runs(outdir: Path) -> list[str]:
    """Run ids with a state file under `outdir`, oldest first (for `--resume` hints)."""
    if not outdir.is_dir():
        return []
    return sorted(
        p.name for p in outdir.iterdir() if RUN_ID.match(p.name) and (p / STATE_FILE).is_file()
    )
