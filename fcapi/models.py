"""Pydantic models of what crosses the wire, shared by the client and the emulator.

One set of models serves both sides so that the emulator cannot drift from what the client
parses. Field names are the platform's (camelCase where it uses camelCase); unknown fields
are kept (`extra="allow"`) because the real site returns more than clients use.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Wire(BaseModel):
    """Base for platform payloads: tolerant of fields we do not know."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TokenPair(Wire):
    access: str
    refresh: str


class AccessToken(Wire):
    access: str


class LoginRequest(Wire):
    username: str
    password: str


class RefreshRequest(Wire):
    refresh: str


class SignupRequest(Wire):
    email: str
    password: str
    firstName: str = ""
    lastName: str = ""
    role: str = "user"


class User(Wire):
    id: int | None = None
    email: str
    firstName: str | None = None
    lastName: str | None = None


class SiteCreate(Wire):
    name: str
    organization: str | None = None
    address: str | None = None
    zip: str | None = None
    city: str | None = None
    country: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    phone: str | None = None


class Site(SiteCreate):
    """The body of `GET /api/site/`; also what a controller reads from `site_info.json`."""

    id: int
    email: str | None = None
    token: str


class App(Wire):
    id: int
    slug: str
    name: str | None = None
    description: str | None = None


class ProjectStatus(StrEnum):
    NEW = ""
    INIT = "init"
    READY = "ready"
    PREPARE = "prepare"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"
    FAILED = "failed"
    STOPPED = "stopped"


class FederatedAppRef(Wire):
    id: int


class WorkflowStep(Wire):
    id: int = 0
    projectId: int | None = None
    federatedApp: FederatedAppRef
    order: int = 0
    versionCertificationLevel: int = 1


class ProjectCreate(Wire):
    name: str
    description: str = ""
    status: str = ""


class ProjectUpdate(Wire):
    """Body of `PUT /api/projects/{id}/`: either a workflow (with status ready) or a status."""

    id: int | None = None
    name: str | None = None
    description: str | None = None
    status: str | None = None
    workflow: list[WorkflowStep] | None = None


class Project(Wire):
    id: int
    name: str = ""
    description: str = ""
    status: str = ""
    workflow: list[WorkflowStep] = Field(default_factory=list)
    role: str | None = None


class ProjectToken(Wire):
    id: int
    token: str
    project: int
    used: bool | None = None


class TokenCommand(Wire):
    cmd: str
    token: str | None = None


class Membership(Wire):
    project: int
    role: str | None = None


class ProjectRun(Wire):
    """One entry of the controller's `GET /project-runs/`, newest first."""

    runNr: int
    startedOn: str | None = None
    logSteps: list[int] = Field(default_factory=list)
    resultSteps: list[int] = Field(default_factory=list)


class LogEntry(Wire):
    time: str
    level: str
    message: str


class ErrorBody(Wire):
    detail: Any = None
