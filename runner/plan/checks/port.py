"""`port`: the controller's port on the host is free, or a controller of ours answers there.

Anything else listening there (another service, a stranger's controller) makes the start fail
or, worse, the runner talk to the wrong server. Read from /proc/net/tcp{,6} (no `ss` needed);
only a busy port costs a python start, to ask it the controller's /ping/.
"""

from __future__ import annotations

import shlex

from fedinfra.inventory import SiteEntry
from runner.plan.checks.base import HostCheck, HostContext, ProbeOutput, Verdict, failed, passed

_PING = (
    "import sys, urllib.request; "
    "urllib.request.urlopen('http://127.0.0.1:%s/ping/' % sys.argv[1], timeout=3)"
)


class Port(HostCheck):
    name = "port"

    def probe(self, site: SiteEntry, host: HostContext) -> str:
        port = site.controller.port
        listening = f"'^ *[0-9]+: [0-9A-F]+:{port:04X} [0-9A-F]+:[0-9A-F]+ 0A '"
        ping = f"{shlex.quote(host.python)} -c {shlex.quote(_PING)} {port} >/dev/null 2>&1"
        return (
            "if [ ! -r /proc/net/tcp ]; then echo unknown; "
            f"elif cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -Eiq {listening}; then "
            f"if {ping}; then echo ours; else echo busy; fi; else echo free; fi"
        )

    def judge(self, site: SiteEntry, out: ProbeOutput, host: HostContext) -> Verdict:
        port = site.controller.port
        answer = out.text.strip()
        if answer == "free":
            return passed(f"port {port} is free", port=port, state="free")
        if answer == "ours":
            return passed(f"a controller answers on port {port}", port=port, state="ours")
        if answer == "busy":
            return failed(f"port {port} is taken by something that is not a controller", port=port)
        return failed(f"cannot tell whether port {port} is free: {answer[:200]!r}", port=port)
