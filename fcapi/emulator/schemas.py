"""The bodies the emulated website answers, where they carry more than the client's models.

The client's models (`fcapi.models`) hold the fields clients use; the emulator answers a few
more, as the platform does, and these models name them so that the OpenAPI document shows
them and the handlers build each body in one place.
"""

from __future__ import annotations

from fcapi.models import Project, ProjectToken, User, Wire


class UserInfo(User):
    """`GET /api/user/info/`, and the answer to a signup."""

    role: str = "user"


class ProjectView(Project):
    """A project as its members see it: the platform's fields, then the emulator's extras."""

    coordinator: str | None = None
    participants: int = 1
    finalized: int = 0
    run: int = 0
    errors: list[str] = []
    createdAt: str = ""


class TokenView(ProjectToken):
    createdAt: str = ""


class JoinedMembership(Wire):
    """The answer to `POST /api/project-tokens/` with `cmd: join`."""

    id: int
    project: int
    role: str = "participant"
    user: int
    token: str


class JoinRequest(Wire):
    """`POST /api/project-tokens/`: a participant joins with a token the coordinator made."""

    token: str
    cmd: str
