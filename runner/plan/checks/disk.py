"""`disk`: enough free space where the controller keeps uploads and results (its data dir).

A full disk shows up as a failed step or a truncated zip long after the start; `df -P` on
the data dir (or its nearest existing parent: it is made at the start) says so now.
"""

from __future__ import annotations

import shlex

from fedinfra.inventory import SiteEntry
from runner.plan.checks.base import HostCheck, HostContext, ProbeOutput, Verdict, failed, passed


def mib(size: int) -> str:
    return f"{size / 1024**2:.0f} MiB"


class Disk(HostCheck):
    name = "disk"

    def probe(self, site: SiteEntry, host: HostContext) -> str:
        folder = shlex.quote(site.controller.data_dir)
        return (
            f'd={folder}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; '
            'echo "$d"; df -Pk "$d" | tail -n 1'
        )

    def judge(self, site: SiteEntry, out: ProbeOutput, host: HostContext) -> Verdict:
        lines = out.text.strip().splitlines()
        fields = lines[-1].split() if lines else []
        if out.exit_status != 0 or len(lines) < 2 or len(fields) < 4 or not fields[3].isdigit():
            return failed(f"df on {site.controller.data_dir} gave no answer: {out.text[:200]!r}")
        free = int(fields[3]) * 1024
        need = host.limits.min_free_bytes
        data: dict[str, object] = {"path": lines[0], "free_bytes": free, "min_free_bytes": need}
        where = site.controller.data_dir
        if lines[0] != where.rstrip("/"):
            where += f" (not made yet: {lines[0]})"
        if free < need:
            return failed(f"only {mib(free)} free in {where}, below {mib(need)}", **data)
        return passed(f"{mib(free)} free in {where}", **data)
