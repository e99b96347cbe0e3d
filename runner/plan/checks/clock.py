"""`clock`: the host's clock is near the runner's.

FeatureCloud's login tokens expire within minutes, and a run's records are compared across
machines: a host whose clock is off rejects valid tokens or stamps its logs at the wrong time.
The host's `date -u +%s` is compared with the middle of the probe's round trip; the round trip
and the whole seconds of `date` bound the error, which is allowed for.
"""

from __future__ import annotations

from fedinfra.inventory import SiteEntry
from runner.plan.checks.base import HostCheck, HostContext, ProbeOutput, Verdict, failed, passed


class Clock(HostCheck):
    name = "clock"

    def probe(self, site: SiteEntry, host: HostContext) -> str:
        return "date -u +%s"

    def judge(self, site: SiteEntry, out: ProbeOutput, host: HostContext) -> Verdict:
        text = out.text.strip()
        if out.exit_status != 0 or not text.isdigit():
            return failed(f"the host's date gave no time: {text[:200]!r}")
        middle = (out.sent_at + out.answered_at) / 2
        offset = int(text) + 0.5 - middle  # `date` drops the fraction: half a second on average
        slack = (out.answered_at - out.sent_at) / 2 + 1.0  # round trip and whole seconds
        limit = host.limits.max_clock_offset
        data: dict[str, object] = {"offset_seconds": round(offset, 1), "max_seconds": limit}
        if abs(offset) > limit + slack:
            side = "ahead of" if offset > 0 else "behind"
            return failed(f"the host's clock is {abs(offset):.0f} s {side} the runner's", **data)
        return passed(f"offset {offset:+.1f} s", **data)
