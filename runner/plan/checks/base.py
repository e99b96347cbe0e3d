"""What a readiness check is: its name, what it asks a site's host or the website, its verdict.

Two kinds, because they reach different places. A `HostCheck` contributes one shell fragment
to the single probe command each site's host runs (one round trip per site however many checks
there are: a hundred sites are checked in seconds) and judges the text its fragment printed. A
`WebsiteCheck` asks the website about the site (its user's login). Reaching the host at all is
the `reachable` check, which the runner (runner.plan.checks.sites) makes itself by connecting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fcapi.website import WebsitePool
from fedinfra.inventory import SiteEntry
from runner.errors import EXIT_SITES_FAILED

Status = Literal["pass", "fail", "skip"]

#: the default bounds of a ready site (`python -m runner check --min-free-disk/--max-clock-offset`)
MIN_FREE_BYTES = 512 * 1024**2
MAX_CLOCK_OFFSET = 60.0


@dataclass(frozen=True)
class Limits:
    """How much is enough: free disk in a controller's data dir, and clock offset.

    Login tokens are short-lived (minutes), so a host whose clock is far off the runner's and
    the website's sees valid tokens as expired; results of a few hundred MiB need the room.
    """

    min_free_bytes: int = MIN_FREE_BYTES
    max_clock_offset: float = MAX_CLOCK_OFFSET


@dataclass(frozen=True)
class Verdict:
    """One check's answer for one site; `detail` is the line a person reads."""

    status: Status
    detail: str
    data: dict[str, object] = field(default_factory=dict)
    #: the exit code a run's preflight stops with when this is its first problem
    exit_code: int = EXIT_SITES_FAILED


@dataclass(frozen=True)
class ProbeOutput:
    """What a host check's fragment printed, and when (runner clock) the probe ran."""

    text: str
    exit_status: int
    sent_at: float
    answered_at: float


@dataclass(frozen=True)
class HostContext:
    """What a fragment may need to know: the host's python, the bounds, the site's host files."""

    python: str
    limits: Limits
    host_files: tuple[str, ...] = ()


class HostCheck(ABC):
    """A check answered by a shell fragment on the site's host."""

    name: ClassVar[str]

    @abstractmethod
    def probe(self, site: SiteEntry, host: HostContext) -> str:
        """A POSIX sh fragment; its stdout and stderr are what `judge` reads."""

    @abstractmethod
    def judge(self, site: SiteEntry, out: ProbeOutput, host: HostContext) -> Verdict: ...


class WebsiteCheck(ABC):
    """A check answered by the website, on the run's own pool (one login per user per run)."""

    name: ClassVar[str]

    @abstractmethod
    async def check(self, site: SiteEntry, pool: WebsitePool) -> Verdict: ...


def passed(detail: str, **data: object) -> Verdict:
    return Verdict("pass", detail, dict(data))


def failed(detail: str, **data: object) -> Verdict:
    return Verdict("fail", detail, dict(data))
