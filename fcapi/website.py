"""The featurecloud.ai website API as typed async methods, and a pool of one login per user.

fedflow logged in again (four requests) for every command; here a user logs in once per
process, lazily, and every method costs exactly the requests its endpoint needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import httpx
from pydantic import SecretStr, TypeAdapter

from fcapi.backoff import POLL, Again, Backoff, poll, retry
from fcapi.credentials import password_for
from fcapi.errors import Conflict, NotFound, ProjectFailed, TransportError, WaitTimeout
from fcapi.http import Closing, RetryPolicy, WebsiteHttp, model_dump, time_left
from fcapi.models import (
    App,
    FederatedAppRef,
    Membership,
    Project,
    ProjectCreate,
    ProjectStatus,
    ProjectToken,
    ProjectUpdate,
    SignupRequest,
    Site,
    SiteCreate,
    TokenCommand,
    User,
    WorkflowStep,
)
from fcapi.ratelimit import TokenBucket
from fcapi.stats import RequestStats
from fcapi.status import REQUEST_WORD, is_failure, is_terminal, parse_status

_APPS = TypeAdapter(list[App])
_PROJECTS = TypeAdapter(list[Project])
_TOKENS = TypeAdapter(list[ProjectToken])

OnPoll = Callable[[Project, float], None]
#: seconds a status wait keeps for its last probe inside a `deadline_scope`
LAST_PROBE = 2.0


def status_word(status: str | ProjectStatus) -> str:
    """What to send to ask for a status: `stopped` is asked for as `shutdown`."""
    parsed = parse_status(str(status))
    return REQUEST_WORD.get(parsed, parsed.value)


class WebsiteClient(Closing):
    """One FeatureCloud user on one website (the real one or the emulator).

    Log in happens on the first call that needs it; `login()` forces it.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        password: SecretStr,
        *,
        rate: float = 3.0,
        burst: int = 3,
        timeout: float = 30.0,
        stats: RequestStats | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        poll_policy: Backoff = POLL,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        self.stats = stats if stats is not None else RequestStats()
        self.limiter = TokenBucket(rate, burst)
        self.poll_policy = poll_policy
        self._http = WebsiteHttp(
            self.base_url,
            user,
            password,
            limiter=self.limiter,
            stats=self.stats,
            timeout=timeout,
            transport=transport,
            retry=retry,
        )
        self._names: dict[int, str] = {}
        self._apps: list[App] | None = None

    def __repr__(self) -> str:
        return f"WebsiteClient(base_url={self.base_url!r}, user={self.user!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def logins(self) -> int:
        """How many times this client logged in (tests hold it to one)."""
        return self._http.logins

    # --- account -----------------------------------------------------------------------

    async def login(self) -> None:
        await self._http.login()

    async def ensure_login(self) -> None:
        await self._http.ensure_login()

    async def refresh(self) -> None:
        await self._http.refresh()

    async def user_info(self) -> User:
        r = await self._http.request("GET", "/api/user/info/")
        return self._http.parse(r, User)

    async def get_site(self) -> Site:
        r = await self._http.request("GET", "/api/site/")
        return self._http.parse(r, Site)

    async def create_site(self, name: str, **fields: str | None) -> Site:
        body = SiteCreate(name=name, **fields)
        # a repeat is refused (one site per user), which `ensure_site` reads as done
        r = await self._http.request("POST", "/api/site/", json=model_dump(body), safe=True)
        return self._http.parse(r, Site)

    async def ensure_site(self, name: str) -> Site:
        """The user's site, created with `name` if the account has none yet."""
        try:
            r = await self._http.request("GET", "/api/site/")
        except NotFound:
            r = None
        if r is not None and r.content.strip() and r.json() not in (None, {}, []):
            return self._http.parse(r, Site)
        try:
            return await self.create_site(name)
        except Conflict:
            # another task of this user created it in between: it is there now
            return await self.get_site()

    @staticmethod
    async def signup(
        base_url: str,
        email: str,
        password: SecretStr | str,
        first_name: str = "",
        last_name: str = "",
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        stats: RequestStats | None = None,
        request_timeout: float = 30.0,
        role: str = "user",
    ) -> User:
        """Create an account (no login needed); the caller then logs in as it."""
        secret = password if isinstance(password, SecretStr) else SecretStr(password)
        http = WebsiteHttp(
            base_url,
            email,
            secret,
            limiter=TokenBucket(),
            stats=stats if stats is not None else RequestStats(),
            timeout=request_timeout,
            transport=transport,
        )
        try:
            body = SignupRequest(
                email=email,
                password=secret.get_secret_value(),
                firstName=first_name,
                lastName=last_name,
                role=role,
            )
            r = await http.request(
                "POST", "/api/auth/user/signup/", json=model_dump(body), auth=False
            )
            return http.parse(r, User)
        finally:
            await http.aclose()

    # --- apps --------------------------------------------------------------------------

    async def apps(self) -> list[App]:
        """The site's app catalogue, read once per client: a run's preflight, project and
        provenance all look apps up, and each read would cost the coordinator's rate bucket a
        request for a list that does not change within a run."""
        if self._apps is None:
            r = await self._http.request("GET", "/api/apps/", auth=False)
            self._apps = self._http.parse(r, _APPS)
        return list(self._apps)

    async def app_by_slug(self, slug: str) -> App:
        apps = await self.apps()
        for app in apps:
            if app.slug == slug:
                return app
        known = ", ".join(sorted(a.slug for a in apps)) or "none"
        raise NotFound(f"no app {slug!r} on the site; apps: {known}", endpoint="GET /api/apps/")

    async def library(self) -> list[App]:
        r = await self._http.request("GET", "/api/apps/purchase/")
        return self._http.parse(r, _APPS)

    async def add_to_library(self, app_id: int) -> None:
        """Have the app in the user's library ("Add to library" in the web page), with one
        request where the site takes a repeated add.

        The runner only needs the app there, not to know whether it was just added, so it
        saves the library read every run would otherwise spend; a site that refuses a second
        add is answered by reading the library.
        """
        try:
            await self._add(app_id)
        except Conflict:
            if not any(a.id == app_id for a in await self.library()):
                raise

    async def ensure_in_library(self, app_id: int) -> bool:
        """Have the app in the library and say whether it was added now: the library is read
        first, so this costs one request more than `add_to_library`."""
        if any(a.id == app_id for a in await self.library()):
            return False
        await self._add(app_id)
        return True

    async def remove_from_library(self, app_id: int) -> None:
        await self._http.request("DELETE", f"/api/apps/{int(app_id)}/purchase/")

    async def _add(self, app_id: int) -> None:
        # the site's path calls adding an app to the library "purchase"; nothing is paid;
        # a repeated add is harmless, so it is retried like a read
        await self._http.request("POST", f"/api/apps/{int(app_id)}/purchase/", safe=True)

    # --- projects ----------------------------------------------------------------------

    async def create_project(self, name: str, description: str = "") -> Project:
        body = ProjectCreate(name=name, description=description, status="")
        r = await self._http.request("POST", "/api/projects/", json=model_dump(body))
        project = self._http.parse(r, Project)
        self._names[project.id] = project.name or name
        return project

    async def set_workflow(
        self,
        project_id: int,
        app_ids: Sequence[int],
        *,
        name: str | None = None,
        description: str = "",
    ) -> Project:
        """Give the project its apps, in order, and status `ready`.

        The site wants the project's name in the same body; it is remembered from
        `create_project`, else read from the site (one more request).
        """
        pid = int(project_id)
        if name is None:
            name = self._names.get(pid)
        if name is None:
            name = (await self.get_project(pid)).name
        body = ProjectUpdate(
            id=pid,
            name=name,
            description=description,
            status=ProjectStatus.READY.value,
            workflow=[
                WorkflowStep(
                    id=0,
                    projectId=pid,
                    federatedApp=FederatedAppRef(id=int(app_id)),
                    order=order,
                    versionCertificationLevel=1,
                )
                for order, app_id in enumerate(app_ids)
            ],
        )
        r = await self._http.request("PUT", f"/api/projects/{pid}/", json=model_dump(body))
        return self._http.parse(r, Project)

    async def get_project(self, project_id: int) -> Project:
        r = await self._http.request("GET", f"/api/projects/{int(project_id)}/")
        return self._http.parse(r, Project)

    async def set_status(self, project_id: int, status: str | ProjectStatus) -> Project:
        """Ask for `ready`, `prepare` or `shutdown` (also accepted as `stopped`)."""
        r = await self._http.request(
            "PUT", f"/api/projects/{int(project_id)}/", json={"status": status_word(status)}
        )
        return self._http.parse(r, Project)

    async def list_projects(self) -> list[Project]:
        r = await self._http.request("GET", "/api/projects/")
        return self._http.parse(r, _PROJECTS)

    async def delete_project(self, project_id: int) -> None:
        await self._http.request("DELETE", f"/api/projects/{int(project_id)}/")

    async def create_token(
        self, project_id: int, *, known: Collection[int] | None = None
    ) -> ProjectToken:
        """One new token for the project, made once even when an answer is lost.

        A 5xx or a lost answer leaves it unknown whether the token was made; the project's
        tokens are then listed, and one that is neither in `known` (the ids that existed
        before: listed here first when not given) nor used is the one made, else the create
        is sent again, with the backoff of any request that is safe to repeat.
        """
        pid = int(project_id)
        before = set(known) if known is not None else {t.id for t in await self.list_tokens(pid)}

        async def attempt() -> ProjectToken:
            try:
                r = await self._http.request(
                    "POST",
                    f"/api/project-tokens/{pid}/",
                    json=model_dump(TokenCommand(cmd="create")),
                )
            except TransportError as exc:
                made = [t for t in await self.list_tokens(pid) if t.id not in before and not t.used]
                if made:
                    return max(made, key=lambda t: t.id)
                raise Again(exc) from None
            return self._http.parse(r, ProjectToken)

        policy = self._http.retry
        return await retry(
            attempt,
            retry_on=lambda exc: isinstance(exc, Again),
            attempts=policy.attempts,
            policy=policy.backoff,
        )

    async def list_tokens(self, project_id: int) -> list[ProjectToken]:
        r = await self._http.request("GET", f"/api/project-tokens/{int(project_id)}/")
        return self._http.parse(r, _TOKENS)

    async def delete_token(self, token_id: int) -> None:
        await self._http.request("DELETE", f"/api/project-tokens/token/{int(token_id)}/")

    async def join(self, token: str) -> Membership:
        r = await self._http.request(
            "POST",
            "/api/project-tokens/",
            json=model_dump(TokenCommand(cmd="join", token=token)),
            secrets=[token],
            safe=True,  # the token is single use: a repeat can only be refused
        )
        return self._http.parse(r, Membership)

    async def wait_for_status(
        self,
        project_id: int,
        wanted: Collection[str],
        *,
        deadline: float,
        on_poll: OnPoll | None = None,
    ) -> Project:
        """Poll the project until its status is one of `wanted`; return it.

        `deadline` is how many seconds to wait from now. A project that ends in `error` or
        `failed` (or `stopped`) without that being wanted raises `ProjectFailed` at once
        rather than waiting out the deadline; a missed deadline raises `WaitTimeout` naming
        the project, the statuses waited for, the last status and the seconds waited. Inside a
        `deadline_scope` the wait ends early enough for its last probe to be answered.
        """
        pid = int(project_id)
        wanted_set = {str(w) for w in wanted}
        left = time_left()
        if left is not None:
            # the last probe must be answered inside the caller's deadline too, or a wait
            # that saw the project every time would end as "no answer"
            deadline = max(0.0, min(deadline, left - LAST_PROBE))

        def settled(p: Project) -> bool:
            return p.status in wanted_set or (p.status != "" and _ends(p.status))

        waited_for = " or ".join(sorted(repr(w) for w in wanted_set))
        start = time.monotonic()
        try:
            project = await poll(
                lambda: self.get_project(pid),
                settled,
                seconds=deadline,
                what=f"project {pid} to reach status {waited_for}",
                policy=self.poll_policy,
                describe=lambda p: f"status {p.status!r}" if p is not None else "nothing",
                on_poll=on_poll,
            )
        except WaitTimeout as exc:
            raise WaitTimeout(
                exc.message, endpoint=f"GET /api/projects/{pid}/", user=self.user
            ) from None
        if project.status not in wanted_set:
            kind = "failed" if is_failure_safe(project.status) else "ended"
            raise ProjectFailed(
                f"project {pid} {kind} with status {project.status!r} while waiting for "
                f"{waited_for} ({time.monotonic() - start:.1f} s)",
                endpoint=f"GET /api/projects/{pid}/",
                user=self.user,
                project_id=pid,
                status=project.status,
            )
        return project


def _ends(status: str) -> bool:
    try:
        return is_terminal(status)
    except ValueError:
        return False  # a status this client does not know: keep waiting


def is_failure_safe(status: str) -> bool:
    try:
        return is_failure(status)
    except ValueError:
        return False


class WebsitePool(Closing):
    """One `WebsiteClient` per user for the whole process, sharing one `RequestStats`.

    The runner drives many sites, often several per user; the pool makes sure each user
    logs in once and shares one token bucket, however many tasks act as that user.
    """

    def __init__(
        self,
        base_url: str,
        passwords: Mapping[str, SecretStr],
        **client_kwargs: Any,
    ) -> None:
        self.base_url = base_url
        self._passwords = dict(passwords)
        self.stats: RequestStats = client_kwargs.pop("stats", None) or RequestStats()
        self._kwargs = client_kwargs
        self._clients: dict[str, WebsiteClient] = {}

    @property
    def users(self) -> list[str]:
        return sorted(self._passwords)

    def client(self, user: str) -> WebsiteClient:
        """The user's client (logged in on first use). Unknown user: `MissingCredentials`."""
        existing = self._clients.get(user)
        if existing is not None:
            return existing
        password = password_for(user, self._passwords)
        created = WebsiteClient(self.base_url, user, password, stats=self.stats, **self._kwargs)
        self._clients[user] = created
        return created

    async def logged_in(self, user: str) -> WebsiteClient:
        """The user's client, logged in now (so a wrong password shows up early)."""
        c = self.client(user)
        await c.ensure_login()
        return c

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            await c.aclose()
