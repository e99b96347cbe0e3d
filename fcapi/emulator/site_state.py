"""What the emulated website remembers, and how it survives a restart.

Persisted: accounts, sites, libraries, projects, tokens and the JWT secret (so issued
tokens stay valid). Not persisted: relayed app messages, which belong to a run in flight.
Writes are atomic (`fcapi.files`) so a killed server never leaves half a file.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from fcapi.files import write_atomic


class UserRec(BaseModel):
    id: int
    email: str
    password: str  # salt$pbkdf2
    firstName: str = ""
    lastName: str = ""
    role: str = "user"
    library: list[int] = Field(default_factory=list)


class SiteRec(BaseModel):
    id: int
    user_id: int
    token: str
    fields: dict[str, Any] = Field(default_factory=dict)


class TokenRec(BaseModel):
    id: int
    token: str
    project: int
    used: bool = False
    used_by: int | None = None
    createdAt: str = ""


class ProjectRec(BaseModel):
    id: int
    name: str = ""
    description: str = ""
    status: str = ""
    workflow: list[dict[str, Any]] = Field(default_factory=list)
    owner: int
    members: list[int] = Field(default_factory=list)  # user ids, coordinator first, join order
    finalized: list[int] = Field(default_factory=list)  # user ids whose controller finalized
    run: int = 0
    site_states: dict[str, str] = Field(default_factory=dict)  # user id -> running|finished|error
    site_details: dict[str, str] = Field(default_factory=dict)
    createdAt: str = ""


class SiteData(BaseModel):
    secret: str = Field(default_factory=lambda: secrets.token_hex(32))
    next_id: dict[str, int] = Field(default_factory=dict)
    users: dict[int, UserRec] = Field(default_factory=dict)
    sites: dict[int, SiteRec] = Field(default_factory=dict)
    tokens: dict[int, TokenRec] = Field(default_factory=dict)
    projects: dict[int, ProjectRec] = Field(default_factory=dict)

    def new_id(self, kind: str) -> int:
        value = self.next_id.get(kind, 1)
        self.next_id[kind] = value + 1
        return value


def load(path: Path | None) -> SiteData:
    if path is None or not path.exists():
        return SiteData()
    return SiteData.model_validate_json(path.read_bytes())


def save(data: SiteData, path: Path | None) -> None:
    if path is None:
        return
    write_atomic(path, data.model_dump_json(), 0o600)  # password hashes, the token secret
