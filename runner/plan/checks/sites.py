"""Run every check at every site: one connection and one probe command per site, in parallel.

The same code answers `python -m runner check` and a run's preflight, so "ready" means one
thing. Each site is dialled (`reachable`), its host runs one command made of every host
check's fragment (each section marked, so one check's noise cannot spill into another's), and
the website is asked about its user. A site that cannot be reached has its host checks
skipped, not failed: the one problem to fix is the connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from fcapi.errors import one_line
from fcapi.website import WebsitePool
from fedinfra.inventory import Inventory, SiteEntry
from runner.plan.checks import HOST_CHECKS, REACHABLE, WEBSITE_CHECKS
from runner.plan.checks.base import HostContext, Limits, ProbeOutput, Verdict, failed, passed
from runner.sites.base import CONNECT_TIMEOUT, SiteConnection, SiteError
from runner.sites.registry import open_site

#: sites checked at once (each holds a connection and a command while it is checked)
SITES_AT_ONCE = 16
#: how long the probe command may run on a host
PROBE_TIMEOUT = 30.0
_MARK = "@@fedstack-check"


@dataclass(frozen=True)
class CheckResult:
    site: str
    check: str
    status: str
    detail: str
    data: dict[str, object]
    exit_code: int

    def line(self) -> str:
        """The one line a person reads for a problem: site, check, what is wrong."""
        return f"site {self.site}: {self.check}: {self.detail}"

    def as_json(self) -> dict[str, object]:
        record = asdict(self)
        del record["exit_code"]
        return record


@dataclass(frozen=True)
class Readiness:
    results: list[CheckResult]

    def data(self, site: str, check: str) -> dict[str, object]:
        """What `check` found at `site` (empty when it did not run there)."""
        found = (r.data for r in self.results if (r.site, r.check) == (site, check))
        return next(found, {})

    @property
    def problems(self) -> list[CheckResult]:
        """The failed checks; a skipped one is the consequence of a failed one, not a problem."""
        return [r for r in self.results if r.status == "fail"]

    def not_ready(self) -> list[str]:
        return list(dict.fromkeys(r.site for r in self.problems))


def probe_script(site: SiteEntry, host: HostContext) -> str:
    """Every host check's fragment in a subshell of its own, each section marked with its rc."""
    parts = [
        f'echo "{_MARK} {check.name}"; ( {check.probe(site, host)} ) 2>&1; echo "{_MARK}-rc $?"'
        for check in HOST_CHECKS
    ]
    return "\n".join(parts)


def split_sections(text: str) -> dict[str, tuple[str, int]]:
    """`name -> (output, exit status)` from the probe's marked output."""
    sections: dict[str, tuple[str, int]] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(f"{_MARK}-rc ") and name is not None:
            rc = line.split()[-1]
            sections[name] = ("\n".join(lines), int(rc) if rc.isdigit() else -1)
            name, lines = None, []
        elif line.startswith(f"{_MARK} "):
            name, lines = line.split(" ", 1)[1], []
        elif name is not None:
            lines.append(line)
    return sections


async def _host_checks(conn: SiteConnection, host: HostContext) -> list[tuple[str, Verdict]]:
    site = conn.site
    sent = time.time()
    result = await conn.run(probe_script(site, host), timeout=PROBE_TIMEOUT)
    answered = time.time()
    sections = split_sections(result.stdout)
    verdicts: list[tuple[str, Verdict]] = []
    for check in HOST_CHECKS:
        if check.name not in sections:
            said = one_line(result.stderr or result.stdout)[:200]
            verdicts.append((check.name, failed(f"the host's probe gave no answer: {said!r}")))
            continue
        text, rc = sections[check.name]
        out = ProbeOutput(text, rc, sent, answered)
        verdicts.append((check.name, check.judge(site, out, host)))
    return verdicts


async def _on_host(
    site: SiteEntry, limits: Limits, connect_timeout: float, host_files: Sequence[str]
) -> list[tuple[str, Verdict]]:
    conn = open_site(site, connect_timeout=connect_timeout)
    try:
        await conn.connect()
    except SiteError as exc:
        skipped = Verdict("skip", f"not checked: site {site.name} is not reachable")
        why = failed(one_line(str(exc)).removeprefix(f"site {site.name}: "))
        return [(REACHABLE, why), *((c.name, skipped) for c in HOST_CHECKS)]
    try:
        reached = passed(
            "connected" if site.transport == "local" else f"connected to {site.host()}"
        )
        python = getattr(conn, "host_python", "python3")
        host = HostContext(python=python, limits=limits, host_files=tuple(host_files))
        try:
            return [(REACHABLE, reached), *await _host_checks(conn, host)]
        except SiteError as exc:
            broken = failed(f"the probe failed: {one_line(str(exc))}")
            return [(REACHABLE, reached), *((c.name, broken) for c in HOST_CHECKS)]
    finally:
        await conn.close()


async def _check_site(
    site: SiteEntry,
    pool: WebsitePool,
    limits: Limits,
    connect_timeout: float,
    host_files: Sequence[str],
) -> list[CheckResult]:
    host, web = await asyncio.gather(
        _on_host(site, limits, connect_timeout, host_files),
        asyncio.gather(*(c.check(site, pool) for c in WEBSITE_CHECKS)),
    )
    pairs = [*host, *zip((c.name for c in WEBSITE_CHECKS), web, strict=True)]
    return [
        CheckResult(site.name, name, v.status, v.detail, v.data, v.exit_code) for name, v in pairs
    ]


async def check_sites(
    inventory: Inventory,
    pool: WebsitePool,
    limits: Limits | None = None,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    sites: Sequence[SiteEntry] | None = None,
    host_files: Mapping[str, Sequence[str]] | None = None,
) -> Readiness:
    """Every check at every site (or `sites`), in inventory order then the registry's.

    `host_files`: by site, the data files on its host whose sha256 the `host` check reports.
    """
    limit = asyncio.Semaphore(SITES_AT_ONCE)
    chosen = list(inventory.sites if sites is None else sites)

    async def one(site: SiteEntry) -> list[CheckResult]:
        async with limit:
            files = (host_files or {}).get(site.name, ())
            return await _check_site(site, pool, limits or Limits(), connect_timeout, files)

    per_site = await asyncio.gather(*map(one, chosen))
    return Readiness([r for results in per_site for r in results])
