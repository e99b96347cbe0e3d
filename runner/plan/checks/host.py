"""`host`: what the site's machine is, for the run's provenance (runner.provenance).

Not a condition of readiness but part of the same probe, so that a run learns what ran where
(OS, kernel, CPU, memory, Docker and the controller image where there are any, and the
sha256 of each of the site's host-resident data files, computed on the host: the data never
moves) without another round trip. It fails only when the host gave no answer at all.
"""

from __future__ import annotations

import shlex

from fedinfra.inventory import SiteEntry
from runner.plan.checks.base import HostCheck, HostContext, ProbeOutput, Verdict, failed, passed
from runner.plan.checks.runtime import CONTROLLER_IMAGE

_FACTS = (
    "[ -r /etc/os-release ] && . /etc/os-release; "
    'echo "os=${PRETTY_NAME:-$(uname -s)}"; echo "kernel=$(uname -sr)"; '
    'echo "arch=$(uname -m)"; '
    'echo "cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)"; '
    "echo \"cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null "
    '| head -n 1)"; '
    "echo \"memory_kib=$(sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo "
    '2>/dev/null)"; '
    "if command -v docker >/dev/null 2>&1; then "
    "echo \"docker=$(docker version --format '{{.Server.Version}}' 2>/dev/null)\"; "
    "echo \"image=$(docker image inspect --format '{{.Id}} {{index .RepoDigests 0}}' "
    f'{CONTROLLER_IMAGE} 2>/dev/null)"; fi; '
    "if command -v featurecloud >/dev/null 2>&1; then "
    'echo "controller=$(featurecloud --version 2>/dev/null | head -n 1)"; fi'
)


class Host(HostCheck):
    name = "host"

    def probe(self, site: SiteEntry, host: HostContext) -> str:
        if not host.host_files:
            return _FACTS
        files = " ".join(shlex.quote(f) for f in host.host_files)
        return (
            f"{_FACTS}; for f in {files}; do h=; "  # only a regular file: a pipe never ends
            '[ -f "$f" ] && h=$(sha256sum "$f" 2>/dev/null | cut -d" " -f1); '
            'echo "sha256=$h $f"; done'
        )

    def judge(self, site: SiteEntry, out: ProbeOutput, host: HostContext) -> Verdict:
        facts: dict[str, object] = {}
        hashes: dict[str, str | None] = {}
        for line in out.text.splitlines():
            key, _, value = line.partition("=")
            if key == "sha256":
                digest, _, path = value.partition(" ")
                hashes[path] = digest or None
            elif key and value:
                facts[key] = (
                    int(value) if key in ("cpus", "memory_kib") and value.isdigit() else value
                )
        image, _, digest = str(facts.pop("image", "")).partition(" ")
        if image:
            facts.update(image=f"{CONTROLLER_IMAGE}@{image}", image_digest=digest or None)
        if "kernel" not in facts:
            return failed(f"the host did not say what it is: {out.text[:200]!r}")
        facts["host_files"] = hashes
        return passed(f"{facts.get('os')}, {facts['kernel']}", **facts)
