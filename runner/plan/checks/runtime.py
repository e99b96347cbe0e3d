"""`runtime`: what the site's start command needs is on the host.

A start command that cannot run fails only once the controller should answer, minutes into a
run; found now it is one line. A `featurecloud controller start` (or `docker ...`) command
needs the program, Docker running and FeatureCloud's controller image pulled; any other
command (the emulator, a site's own script) needs its program found on the host's PATH.
"""

from __future__ import annotations

import posixpath
import shlex

from fedinfra.inventory import SiteEntry
from runner.plan.checks.base import HostCheck, HostContext, ProbeOutput, Verdict, failed, passed

#: the image `featurecloud controller start` runs
CONTROLLER_IMAGE = "featurecloud.ai/controller"
#: programs whose controller is a Docker container
DOCKER_PROGRAMS = frozenset({"featurecloud", "docker"})
#: words that run the next word: the program is after them (and their options)
_WRAPPERS = frozenset({"exec", "nice", "nohup", "setsid", "env", "sudo", "command", "ionice"})
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")"})


def start_program(command: str) -> str | None:
    """The program the start command's last simple command runs, past wrappers and options."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: the host's shell would refuse it too
        return None
    last: list[str] = []
    for token in tokens:
        last = [] if token in _SEPARATORS else [*last, token]
    for word in last:
        if word in _WRAPPERS or word.startswith("-") or word.isdigit() or "=" in word:
            continue
        return word
    return None


class Runtime(HostCheck):
    name = "runtime"

    def probe(self, site: SiteEntry, host: HostContext) -> str:
        program = start_program(site.controller.start_command)
        if program is None:
            return "echo program=unknown"
        found = (
            f'p=$(command -v {shlex.quote(program)} 2>/dev/null) && echo "program=$p" '
            "|| echo program="
        )
        if posixpath.basename(program) not in DOCKER_PROGRAMS:
            return found
        image = shlex.quote(CONTROLLER_IMAGE)
        return (
            f"{found}; docker info >/dev/null 2>&1 && echo docker=running || echo docker=down; "
            "echo \"docker_version=$(docker version --format '{{.Server.Version}}' 2>/dev/null)\"; "
            f"echo \"image=$(docker image inspect --format '{{{{.Id}}}}' {image} 2>/dev/null)\""
        )

    def judge(self, site: SiteEntry, out: ProbeOutput, host: HostContext) -> Verdict:
        facts = dict(line.partition("=")[::2] for line in out.text.splitlines() if "=" in line)
        program = start_program(site.controller.start_command)
        if program is None or facts.get("program") == "unknown":
            return failed(f"cannot tell which program the start command runs: {program!r}")
        if not facts.get("program"):
            return failed(f"the start command's program {program} is not found on the host")
        data: dict[str, object] = {"program": facts["program"]}
        if posixpath.basename(program) not in DOCKER_PROGRAMS:
            return passed(f"{program} found at {facts['program']}", **data)
        if facts.get("docker") != "running":
            return failed("Docker is not running on the host (docker info failed)", **data)
        data.update(docker=facts.get("docker_version") or None, image=facts.get("image") or None)
        if not facts.get("image"):
            return failed(f"the controller image {CONTROLLER_IMAGE} is not on the host", **data)
        return passed(f"Docker {facts.get('docker_version')} and {CONTROLLER_IMAGE}", **data)
