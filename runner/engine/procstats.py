"""One resource sample of a host and its sites: the shell line that takes it, and the numbers.

The line reads the kernel's own counters (`/proc/uptime`, `/proc/stat`, `/proc/meminfo`,
`/proc/net/dev`) once per host, then each site's controller: its process (`/proc/PID/stat` and
`status`, the pid from the emulator's pid file) or, without one, its container. Nothing is
installed on the host, and the line forks one `df -P` for all the host's data dirs and one
`docker stats` for all its containers: with a hundred sites sampled every few seconds, a few
processes per site would cost more than what is measured. The command and its parser live
together because its output format is theirs alone. Everything but `sample_command` is a pure
function of text, so it is tested on real `/proc` text.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from runner.sites.shell import emulator_pid_file

#: `docker stats` memory units (binary and decimal) in bytes
_UNITS = {
    "B": 1,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
}


ControllerKind = Literal["process", "container"]


class SampleError(ValueError):
    """A sample's output lacks a section every Linux host has: the sample is a miss."""


#: at most this many sites in one command: the line stays far below the kernel's 128 KiB bound
#: on one argument (a site adds about 150 bytes)
SITES_PER_COMMAND = 100

#: a site's own part of the line: its controller's process, through the emulator's pid file;
#: without one, its name joins the containers `docker stats` is asked about
_SITE_FUNCTION = (
    '_site() { p=; { read -r p <"$1"; } 2>/dev/null; '
    'if [ -n "$p" ] && [ -r "/proc/$p/stat" ]; then echo @pid; '
    'read -r st <"/proc/$p/stat"; echo "$st"; '
    'while read -r k v _; do [ "$k" = VmRSS: ] && echo "$v"; done <"/proc/$p/status"; '
    'else c="$c $2"; fi; }; c=; '
)


def sample_command(targets: Sequence[tuple[str, str]]) -> str:
    """The one shell line that samples a host and its sites, each given as (data dir,
    controller name): the host's sections, each site's process after `@@i`, then one `df`
    for every data dir (`@@disks` lists whose rows follow `/`'s) and one `docker stats` for
    the controllers without a process (`@@docker`).

    Sites that share a host share its sample: the host's counters are read once and the whole
    line forks `df` once (and `docker` once), where a command per site would start 50 shells
    a second beside the run they measure at a hundred local sites sampled every 2 s.
    """
    host = (
        'echo @uptime; read -r u _ </proc/uptime; echo "$u"; '
        'echo @cpu; while read -r l; do case $l in cpu*) echo "$l";; *) break;; esac; '
        "done </proc/stat; "
        "echo @mem; while read -r k v _; do case $k in MemTotal:|MemAvailable:) "
        'echo "$k $v";; esac; done </proc/meminfo; '
        'echo @net; while read -r l; do echo "$l"; done </proc/net/dev; '
    )
    sites = "".join(
        f"echo @@{i}; _site {shlex.quote(emulator_pid_file(data_dir, name))} {shlex.quote(name)}; "
        for i, (data_dir, name) in enumerate(targets)
    )
    disks = "".join(
        f'[ -d {q} ] && {{ echo {i}; set -- "$@" {q}; }}; '
        for i, q in ((i, shlex.quote(d)) for i, (d, _) in enumerate(targets))
    )
    docker_format = shlex.quote("{{json .}}")
    return (
        f"{host}{_SITE_FUNCTION}{sites}echo @@disks; set --; {disks}"
        'echo @@df; LC_ALL=C df -Pk / "$@" 2>/dev/null; echo @@docker; '
        'if [ -n "$c" ] && command -v docker >/dev/null 2>&1; then '
        f"docker stats --no-stream --format {docker_format} $c 2>/dev/null; fi; true"
    )


@dataclass(frozen=True)
class Controller:
    """The controller's own use at one moment: a process's ticks, or a container's share."""

    #: "process" (ticks since it started) or "container" (docker's per-core percent now)
    kind: ControllerKind
    rss_kib: float
    pid: int | None = None
    ticks: int | None = None
    container_cpu_pct: float | None = None


@dataclass(frozen=True)
class Counters:
    """One sample's raw counters, before they are compared with the previous sample's."""

    uptime: float
    cpu_total: int
    cpu_idle: int
    cpus: int
    mem_total_kib: int
    mem_available_kib: int
    disk_free_kib: int
    net_rx_bytes: int
    net_tx_bytes: int
    controller: Controller | None


@dataclass(frozen=True)
class Reading:
    """What a sample says, in the units metrics.json keeps; None where it cannot say."""

    cpu_pct: float | None
    mem_used_mib: float
    mem_total_mib: float
    disk_free_mib: float
    net_rx_kib_s: float | None
    net_tx_kib_s: float | None
    controller_cpu_pct: float | None
    controller_rss_mib: float | None


def sections(text: str) -> dict[str, list[str]]:
    """The output's `@name` sections, each a list of its non-empty lines."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@") and line[1:].isalpha():
            current = out.setdefault(line[1:], [])
        elif current is not None and line.strip():
            current.append(line.strip())
    return out


def parse_cpu(lines: list[str]) -> tuple[int, int, int]:
    """`/proc/stat`'s `cpu` line as (all ticks, idle + iowait ticks), and the `cpuN` count."""
    total_line = next((line for line in lines if line.split()[0] == "cpu"), None)
    if total_line is None:
        raise SampleError("no cpu line in /proc/stat")
    ticks = [int(v) for v in total_line.split()[1:]]
    # guest time is counted in user time already (proc(5)); idle + iowait is the idle part
    total = sum(ticks[:8])
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    cpus = sum(1 for line in lines if line.split()[0][3:].isdigit())
    return total, idle, max(cpus, 1)


def parse_meminfo(lines: list[str]) -> tuple[int, int]:
    """(MemTotal, MemAvailable) in KiB."""
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        values[key.strip()] = int(rest.split()[0])
    if "MemTotal" not in values or "MemAvailable" not in values:
        raise SampleError("no MemTotal or MemAvailable in /proc/meminfo")
    return values["MemTotal"], values["MemAvailable"]


def parse_net_dev(lines: list[str]) -> tuple[int, int]:
    """Bytes received and sent over every interface but loopback, since boot."""
    rx = tx = 0
    for line in lines:
        name, sep, rest = line.partition(":")
        if not sep or "|" in line or name.strip() == "lo":
            continue
        fields = rest.split()
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def parse_df(lines: list[str]) -> int:
    """`df -Pk`'s available KiB (the line after the header)."""
    rows = [line.split() for line in lines if not line.startswith("Filesystem")]
    if not rows or len(rows[-1]) < 6:
        raise SampleError("no filesystem line in df -P")
    return int(rows[-1][3])


def parse_process(lines: list[str]) -> Controller | None:
    """`/proc/PID/stat` (pid, utime + stime) and VmRSS (KiB); None if the process vanished."""
    if len(lines) < 2:
        return None
    stat = lines[0]
    after = stat[stat.rfind(")") + 2 :].split()  # the name may hold spaces and parentheses
    if len(after) < 13:
        return None
    return Controller(
        kind="process",
        pid=int(stat.split()[0]),
        ticks=int(after[11]) + int(after[12]),
        rss_kib=float(lines[1].split()[0]),
    )


def mebibytes(amount: str) -> float:
    """`12.3MiB` or `1.2GB` (docker's spellings) in MiB."""
    text = amount.strip()
    digits = text.rstrip("KMGTiBkb")
    unit = text[len(digits) :].upper() or "B"
    return float(digits) * _UNITS[unit] / 1024**2


def parse_docker(lines: list[str]) -> Controller | None:
    """`docker stats --no-stream --format '{{json .}}'`: CPU (per-core %) and memory in use."""
    for line in lines:
        try:
            stats = json.loads(line)
            cpu = float(str(stats["CPUPerc"]).rstrip("%"))
            used = str(stats["MemUsage"]).split("/")[0]
            return Controller(
                kind="container", container_cpu_pct=cpu, rss_kib=mebibytes(used) * 1024
            )
        except (ValueError, KeyError, TypeError):
            continue
    return None


def split_sites(text: str) -> tuple[str, dict[str, list[str]]]:
    """A host sample's output as the host's part and its `@@` parts, each a list of lines."""
    host: list[str] = []
    parts: dict[str, list[str]] = {}
    current = host
    for line in text.splitlines():
        if line.startswith("@@") and line[2:].isalnum():
            current = parts.setdefault(line[2:], [])
        else:
            current.append(line)
    return "\n".join(host), parts


def _disks(parts: dict[str, list[str]], count: int) -> list[str | SampleError]:
    """Each site's `df -P` line: its data dir's, or `/`'s where the dir does not exist."""
    listed = [int(i) for i in parts.get("disks", []) if i.strip().isdigit()]
    rows = [line for line in parts.get("df", [])[1:] if line.strip()]  # [0]: the header
    if not rows or len(rows) != 1 + len(listed):
        why = SampleError(f"df answered {max(len(rows) - 1, 0)} of {len(listed)} data dirs")
        return [why] * count
    found: list[str | SampleError] = [rows[0]] * count
    for i, row in zip(listed, rows[1:], strict=True):
        if i < count:
            found[i] = row
    return found


def _containers(parts: dict[str, list[str]]) -> dict[str, str]:
    """`docker stats` lines by container name."""
    found = {}
    for line in parts.get("docker", []):
        with contextlib.suppress(ValueError, AttributeError):
            found[str(json.loads(line).get("Name"))] = line
    return found


def parse_samples(text: str, targets: Sequence[tuple[str, str]]) -> list[Counters | SampleError]:
    """Each site's counters from one host sample (`sample_command(targets)`'s output); a
    site whose part is missing or unreadable gets its own `SampleError`, the others keep
    theirs."""
    host, parts = split_sites(text)
    disks = _disks(parts, len(targets))
    containers = _containers(parts)
    found: list[Counters | SampleError] = []
    for i, (_, name) in enumerate(targets):
        own, disk = parts.get(str(i)), disks[i]
        if own is None or isinstance(disk, SampleError):
            found.append(disk if isinstance(disk, SampleError) else _NO_PART)
            continue
        docker = f"@docker\n{containers[name]}" if name in containers else ""
        lines = "\n".join(own)
        try:
            found.append(parse_sample(f"{host}\n@df\n{disk}\n{lines}\n{docker}"))
        except SampleError as exc:
            found.append(exc)
    return found


_NO_PART = SampleError("no output for this site in its host's sample")


def parse_sample(text: str) -> Counters:
    """Every counter of one sample's output; `SampleError` when a host section is missing."""
    found = sections(text)
    for needed in ("uptime", "cpu", "mem", "net", "df"):
        if not found.get(needed):
            raise SampleError(f"no {needed} section in the sample's output")
    try:
        total, idle, cpus = parse_cpu(found["cpu"])
        mem_total, mem_available = parse_meminfo(found["mem"])
        rx, tx = parse_net_dev(found["net"])
        controller = None
        if "pid" in found:
            controller = parse_process(found["pid"])
        elif "docker" in found:
            controller = parse_docker(found["docker"])
        return Counters(
            uptime=float(found["uptime"][0]),
            cpu_total=total,
            cpu_idle=idle,
            cpus=cpus,
            mem_total_kib=mem_total,
            mem_available_kib=mem_available,
            disk_free_kib=parse_df(found["df"]),
            net_rx_bytes=rx,
            net_tx_bytes=tx,
            controller=controller,
        )
    except (ValueError, IndexError) as exc:
        raise SampleError(f"unreadable sample: {exc}") from None


def _controller_cpu(before: Counters | None, now: Counters, ticks: int) -> float | None:
    """The controller's share of the whole host's CPU (0-100, like `cpu_pct`)."""
    c = now.controller
    if c is None:
        return None
    if c.kind == "container":
        return None if c.container_cpu_pct is None else c.container_cpu_pct / now.cpus
    was = before.controller if before is not None else None
    if was is None or was.pid != c.pid or was.ticks is None or c.ticks is None or ticks <= 0:
        return None  # the first look at this process: no interval to divide by
    return 100.0 * (c.ticks - was.ticks) / ticks


def reading(before: Counters | None, now: Counters) -> Reading:
    """The numbers of `now`; rates need `before` (the previous sample), else they are None."""
    ticks = now.cpu_total - before.cpu_total if before is not None else 0
    seconds = now.uptime - before.uptime if before is not None else 0.0
    cpu = None
    if ticks > 0:
        cpu = 100.0 * (ticks - (now.cpu_idle - before.cpu_idle if before else 0)) / ticks
    rx = tx = None
    if before is not None and seconds > 0:
        rx = max(now.net_rx_bytes - before.net_rx_bytes, 0) / 1024 / seconds
        tx = max(now.net_tx_bytes - before.net_tx_bytes, 0) / 1024 / seconds
    c = now.controller
    return Reading(
        cpu_pct=cpu,
        mem_used_mib=(now.mem_total_kib - now.mem_available_kib) / 1024,
        mem_total_mib=now.mem_total_kib / 1024,
        disk_free_mib=now.disk_free_kib / 1024,
        net_rx_kib_s=rx,
        net_tx_kib_s=tx,
        controller_cpu_pct=_controller_cpu(before, now, ticks),
        controller_rss_mib=c.rss_kib / 1024 if c is not None else None,
    )
