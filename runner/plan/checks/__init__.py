"""The readiness checks of a site, in the order they are reported: the registry.

`python -m runner check` and every run's preflight (runner.plan.preflight) run exactly these
(runner.plan.checks.sites). A new check is one module deriving from `HostCheck` or
`WebsiteCheck` (runner.plan.checks.base) and one line here; `reachable` is the connection
itself and always comes first.
"""

from __future__ import annotations

from runner.plan.checks.base import HostCheck, WebsiteCheck
from runner.plan.checks.clock import Clock
from runner.plan.checks.disk import Disk
from runner.plan.checks.host import Host
from runner.plan.checks.login import Login
from runner.plan.checks.port import Port
from runner.plan.checks.runtime import Runtime

#: the name of the check that is the connection to the site's host
REACHABLE = "reachable"
HOST_CHECKS: list[HostCheck] = [Runtime(), Port(), Disk(), Clock(), Host()]
WEBSITE_CHECKS: list[WebsiteCheck] = [Login()]


def check_names() -> list[str]:
    """Every check, as `--json` reports them for each site."""
    return [REACHABLE, *(c.name for c in HOST_CHECKS), *(c.name for c in WEBSITE_CHECKS)]
