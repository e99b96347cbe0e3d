"""The website's live state: persisted records, auth, wake-ups and relay inboxes.

Handlers of the public API (`site_server`) and of the internal relay (`relay`) share one
`SiteContext`; the state machine itself is `fcapi.status`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request

from fcapi.emulator import auth, site_state
from fcapi.emulator.faults import FaultState
from fcapi.emulator.httputil import HTTPError
from fcapi.emulator.middleware import RequestCounts
from fcapi.emulator.pulse import Pulse
from fcapi.emulator.schemas import ProjectView
from fcapi.emulator.site_state import ProjectRec, SiteRec, UserRec
from fcapi.models import WorkflowStep

NOT_AUTHENTICATED = "Authentication credentials were not provided."
BAD_TOKEN = "Given token not valid for any token type"  # noqa: S105 (a message)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Message:
    __slots__ = ("data", "memo", "sender")

    def __init__(self, sender: str, memo: str, data: str) -> None:
        self.sender, self.memo, self.data = sender, memo, data


class SiteContext:
    def __init__(
        self,
        state_path: Path | None,
        faults: FaultState,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state_path = state_path
        self.data = site_state.load(state_path)
        self.faults = faults
        self.counts = RequestCounts()
        self.clock = clock
        self._pulses: dict[int, Pulse] = {}
        self.closing = False
        self._site_index: dict[int, SiteRec] = {}
        self._token_index: dict[str, SiteRec] = {}
        #: (project, run, step, user id) -> messages waiting for that site's controller
        self.inbox: dict[tuple[int, int, int, int], list[Message]] = {}
        self.save()

    # persistence and wake-ups
    def save(self) -> None:
        site_state.save(self.data, self.state_path)

    def pulse(self, pid: int) -> Pulse:
        return self._pulses.setdefault(pid, Pulse())

    def changed(self, pid: int) -> None:
        """A project moved: persist, and wake every long poll watching it."""
        self.save()
        self.pulse(pid).bump()

    def shutdown(self) -> None:
        """Release every long poll now, so the server stops without waiting them out."""
        self.closing = True
        for pulse in self._pulses.values():
            pulse.bump()

    # authentication
    def issue(self, user: UserRec) -> dict[str, str]:
        now = self.clock()
        return {
            "access": self.access_for(user),
            "refresh": auth.make_token(
                self.data.secret, "refresh", user.id, now, auth.REFRESH_LIFETIME
            ),
        }

    def access_for(self, user: UserRec) -> str:
        lifetime = self.faults.faults.access_lifetime
        return auth.make_token(self.data.secret, "access", user.id, self.clock(), lifetime)

    def user_from_token(self, token: str, token_type: str) -> UserRec | None:
        claims = auth.read_token(self.data.secret, token, token_type, self.clock())
        if claims is None:
            return None
        return self.data.users.get(int(claims["user_id"]))

    def current_user(self, request: Request) -> UserRec:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not token or scheme.lower() not in {"bearer", "jwt"}:
            raise HTTPError(401, NOT_AUTHENTICATED, {"WWW-Authenticate": 'Bearer realm="api"'})
        user = self.user_from_token(token.strip(), "access")
        if user is None:
            raise HTTPError(401, BAD_TOKEN, {"WWW-Authenticate": 'Bearer realm="api"'})
        request.state.user = user.email
        return user

    def site_from_token(self, request: Request) -> tuple[SiteRec, UserRec]:
        token = request.headers.get("x-site-token", "")
        self.site_of(-1)  # refreshes the indexes
        site = self._token_index.get(token) if token else None
        if site is None:
            raise HTTPError(
                401, "unknown site token: write the body of GET /api/site/ to site_info.json"
            )
        return site, self.data.users[site.user_id]

    # lookups
    def user_by_email(self, email: str) -> UserRec | None:
        return next((u for u in self.data.users.values() if u.email.lower() == email.lower()), None)

    def site_of(self, user_id: int) -> SiteRec | None:
        """The user's site; indexed because every relay call of 100 sites asks for it.

        Sites are only ever added, so the index is rebuilt when their number changes.
        """
        if len(self._site_index) != len(self.data.sites):
            self._site_index = {s.user_id: s for s in self.data.sites.values()}
            self._token_index = {s.token: s for s in self.data.sites.values()}
        return self._site_index.get(user_id)

    def project_for(self, pid: int, user: UserRec) -> ProjectRec:
        """The project if `user` is a member; a stranger learns nothing (404, as DRF answers)."""
        project = self.data.projects.get(pid)
        if project is None or user.id not in project.members:
            raise HTTPError(404, "Not found.")
        return project

    def site_json(self, site: SiteRec, user: UserRec) -> dict[str, Any]:
        return {"id": site.id, **site.fields, "email": user.email, "token": site.token}

    def project_json(self, p: ProjectRec, user: UserRec) -> dict[str, Any]:
        owner = self.data.users.get(p.owner)
        return ProjectView(
            id=p.id,
            name=p.name,
            description=p.description,
            status=p.status,
            workflow=[WorkflowStep.model_validate(s) for s in p.workflow],
            role="coordinator" if user.id == p.owner else "participant",
            coordinator=owner.email if owner else None,
            participants=len(p.members),
            finalized=len(p.finalized),
            run=p.run,
            errors=list(p.site_details.values()),
            createdAt=p.createdAt,
        ).model_dump()

    def member_sites(self, p: ProjectRec) -> list[tuple[int, SiteRec | None]]:
        return [(uid, self.site_of(uid)) for uid in p.members]
