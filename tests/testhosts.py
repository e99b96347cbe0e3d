"""OpenSSH test hosts, each in its own network namespace, made and removed by the tests.

Why: the runner must be tested against real sshd with real host keys, real port forwarding
and a real "localhost of the host" that differs from the runner's, and that cannot be faked.
A namespace with a veth /30 link gives each host its own address and loopback; its own sshd
(host key, authorized key, config, pid file, log) and its own working directory make it a
machine as far as the runner can tell. See /work/shared/reference/testhosts.md.

Use `test_hosts(n)` as a context manager (it skips the test when namespaces cannot be made),
or the fixtures in tests/runner/conftest.py. Everything is removed in a `finally`: processes
inside each namespace are killed (`ip netns pids`), then the namespace (with its veth pair).
Namespaces left behind by a crashed earlier run (prefix `fst<pid>h`, pid no longer alive) are
swept before new ones are made.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedinfra.inventory import ControllerSpec, SiteEntry, SshAccess

NETWORK = ipaddress.ip_network("10.231.0.0/16")
BLOCKS = NETWORK.num_addresses // 4  # /30 links
PREFIX = "fst"
NS_PATTERN = re.compile(rf"^{PREFIX}(\d+)h(\d+)$")
#: the label of a group's runner address on the runner's loopback: `lo:f<pid>g<n>`
LABEL_PATTERN = re.compile(r"inet (10\.231\.\d+\.\d+)/32 .*\blo:f(\d+)g\d+")
SSHD = "/usr/sbin/sshd"
LOCK_FILE = "/run/fedstack-testhosts.lock"
#: how long a fresh sshd may take to listen, and a killed host's processes to go
START_DEADLINE = 10.0
KILL_DEADLINE = 5.0

_counter = itertools.count()


@dataclass
class NetnsHost:
    """One test host: a namespace, its link, its sshd and the data a SiteEntry needs."""

    index: int
    namespace: str
    veth: str
    address: str
    gateway: str
    #: where this host reaches the runner's machine (shared by a group's hosts): bind servers the
    #: hosts must call (the emulated website) to this address
    runner_address: str
    root: Path
    workdir: str
    private_key: str
    host_key: str
    port: int = 22
    user: str = "root"
    #: the namespace of the host this one sits behind (its only link), or None: linked to the
    #: runner's side
    behind: str | None = None

    __test__ = False

    @property
    def sshd_log(self) -> Path:
        return self.root / "sshd.log"

    def ssh_access(self, host_keys: list[str] | None = None) -> SshAccess:
        return SshAccess.model_validate(
            {
                "address": self.address,
                "port": self.port,
                "user": self.user,
                "private_key": self.private_key,
                "host_keys": host_keys if host_keys is not None else [self.host_key],
            }
        )

    def site_entry(
        self,
        name: str,
        *,
        controller: ControllerSpec | None = None,
        role: str = "participant",
        fc_user: str | None = None,
        host_keys: list[str] | None = None,
    ) -> SiteEntry:
        """A SiteEntry for this host; the controller's data dir defaults to workdir/data."""
        return SiteEntry.model_validate(
            {
                "name": name,
                "fc_user": fc_user or f"{name}@example.org",
                "role": role,
                "transport": "ssh",
                "ssh": self.ssh_access(host_keys),
                "workdir": self.workdir,
                "controller": controller or ControllerSpec(data_dir=f"{self.workdir}/data"),
            }
        )

    def exec(self, *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host's namespace (as its own root would)."""
        return subprocess.run(  # type: ignore[call-overload,no-any-return]
            ["ip", "netns", "exec", self.namespace, *argv],
            check=True,
            capture_output=True,
            text=True,
            **kwargs,
        )

    def spawn(self, *argv: str, log: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running process inside the namespace; `kill()` or cleanup ends it."""
        out = open(log or os.devnull, "ab")  # noqa: SIM115
        try:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            out.close()

    def pids(self) -> list[int]:
        out = subprocess.run(
            ["ip", "netns", "pids", self.namespace], capture_output=True, text=True, check=False
        ).stdout
        return [int(p) for p in out.split()]

    def kill(self) -> None:
        """The machine dies: sshd and everything else in the namespace is killed."""
        _kill_namespace(self.namespace)

    def start_sshd(self) -> None:
        """Bring sshd (back) up, as a host that finishes booting; returns once it listens."""
        _start_sshd(self.namespace, self.root, self.address, inside=self.behind is not None)

    def jump_access(self, jump: NetnsHost) -> SshAccess:
        """This host's access through `jump`, each with its own key pinned."""
        return self.ssh_access().model_copy(update={"jump": jump.ssh_access()})

    def link_down(self) -> None:
        """The network to the host is cut: packets vanish, nothing is refused."""
        _ip("link", "set", self.veth, "down")

    def link_up(self) -> None:
        _ip("link", "set", self.veth, "up")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _wait(condition: Callable[[], bool], deadline: float, who: str) -> None:
    """Poll `condition()` with backoff until true or the deadline; the error names `who`."""
    end = time.monotonic() + deadline
    pause = 0.01
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"test hosts: gave up after {deadline:g} s waiting for {who}")
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def _kill_namespace(namespace: str) -> None:
    def pids() -> list[int]:
        out = _ip("netns", "pids", namespace, check=False).stdout
        return [int(p) for p in out.split()]

    for pid in pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait(lambda: not pids(), KILL_DEADLINE, f"the processes of namespace {namespace} to die")


def _remove_namespace(namespace: str) -> None:
    with contextlib.suppress(TimeoutError):
        _kill_namespace(namespace)
    _ip("netns", "del", namespace, check=False)


def sweep_stale() -> list[str]:
    """Remove namespaces and runner addresses of our prefix whose creating process is gone.

    Those are what a crashed earlier run (of this pid namespace) left behind.
    """
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = NS_PATTERN.match(name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            _remove_namespace(name)
            removed.append(name)
    for match in LABEL_PATTERN.finditer(_ip("-4", "-o", "addr", "show", "dev", "lo").stdout):
        if not Path(f"/proc/{match.group(2)}").exists():
            _ip("addr", "del", f"{match.group(1)}/32", "dev", "lo", check=False)
            removed.append(match.group(1))
    return removed


def _used_blocks() -> set[int]:
    """The /30 blocks of 10.231.0.0/16 already on some interface (another run's hosts)."""
    used = set()
    for match in re.finditer(r"inet (10\.231\.\d+\.\d+)/", _ip("-4", "-o", "addr").stdout):
        offset = int(ipaddress.ip_address(match.group(1))) - int(NETWORK.network_address)
        used.add(offset // 4)
    return used


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "test hosts need root to make network namespaces"
    if shutil.which("ip") is None or not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        return "test hosts need iproute2 (ip), openssh-server (/usr/sbin/sshd) and ssh-keygen"
    probe = f"{PREFIX}{os.getpid()}probe"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` is not possible here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _listening_inside(namespace: str, address: str, port: int) -> bool:
    """Whether `address:port` answers from inside `namespace` (a host the runner cannot reach)."""
    probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=0.5)"
    done = _ip("netns", "exec", namespace, sys.executable, "-c", probe, check=False)
    return done.returncode == 0


def _start_sshd(namespace: str, root: Path, address: str, *, inside: bool = False) -> None:
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    config, log = root / "sshd_config", root / "sshd.log"
    _ip("netns", "exec", namespace, SSHD, "-f", str(config), "-E", str(log))
    _wait(
        lambda: _listening_inside(namespace, address, 22) if inside else _listening(address, 22),
        START_DEADLINE,
        f"sshd of test host {namespace} to listen on {address}:22",
    )


def _write_sshd_config(root: Path, address: str) -> None:
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {address}",
                "Port 22",
                f"HostKey {root / 'hostkey'}",
                f"AuthorizedKeysFile {root / 'userkey.pub'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                f"PidFile {root / 'sshd.pid'}",
                "AllowTcpForwarding yes",
                "Subsystem sftp internal-sftp",
                "PrintMotd no",
                "MaxStartups 100",
                "MaxSessions 100",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )


def _make_host(
    index: int, block: int, base: Path, runner_address: str, behind: str | None = None
) -> NetnsHost:
    """A host linked to the runner's side, or, `behind` a namespace, linked to that one only."""
    pid = os.getpid()
    namespace = f"{PREFIX}{pid}h{index}"
    veth = f"v{PREFIX}{pid}h{index}"[:15]
    first = int(NETWORK.network_address) + block * 4
    gateway, address = str(ipaddress.ip_address(first + 1)), str(ipaddress.ip_address(first + 2))
    root = base / f"h{index}"
    workdir = root / "work"
    workdir.mkdir(parents=True)

    _ip("netns", "add", namespace)
    _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
    # the gateway end: on the runner's side, or in the namespace of the host this one is behind
    gw = [] if behind is None else ["netns", "exec", behind, "ip"]
    if behind is not None:
        _ip("link", "set", veth, "netns", behind)
    _ip(*gw, "addr", "add", f"{gateway}/30", "dev", veth)
    _ip(*gw, "link", "set", veth, "up")
    _ip("netns", "exec", namespace, "ip", "addr", "add", f"{address}/30", "dev", "eth0")
    _ip("netns", "exec", namespace, "ip", "link", "set", "eth0", "up")
    _ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up")
    if behind is None:
        # one route, to the group's runner address only: hosts reach nothing else of this machine
        _ip(
            "netns", "exec", namespace, "ip", "route", "add", f"{runner_address}/32", "via", gateway
        )

    _keygen(root / "hostkey")
    _keygen(root / "userkey")
    _write_sshd_config(root, address)
    _start_sshd(namespace, root, address, inside=behind is not None)
    host_key = " ".join((root / "hostkey.pub").read_text().split()[:2])
    return NetnsHost(
        index=index,
        namespace=namespace,
        veth=veth,
        address=address,
        gateway=gateway,
        runner_address=runner_address,
        root=root,
        workdir=str(workdir),
        private_key=(root / "userkey").read_text(),
        host_key=host_key,
        behind=behind,
    )


@contextlib.contextmanager
def test_hosts(n: int, *, behind: int = 0) -> Iterator[list[NetnsHost]]:
    """n fresh OpenSSH test hosts; skips the calling test when this machine cannot make them.

    The last `behind` of them sit behind the first, as VMs on a hypervisor's NAT network or
    hosts in a bastion's private subnet: linked to the first host only, so the runner reaches
    them only by tunnelling through it (`NetnsHost.jump_access`).
    """
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    sweep_stale()
    base = Path(tempfile.mkdtemp(prefix=f"fedstack-hosts-{os.getpid()}-"))
    hosts: list[NetnsHost] = []
    namespaces: list[str] = []
    label = f"lo:f{os.getpid()}g{next(_counter)}"[:15]
    runner_address = ""
    try:
        # the lock keeps two concurrent runs from picking the same free /30 blocks
        with open(LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = _used_blocks()
            start = (os.getpid() * 16) % BLOCKS
            free = (
                b % BLOCKS
                for b in range(start, start + BLOCKS)
                if b % BLOCKS not in used and b % BLOCKS != 0
            )
            # the runner's address for this group lives on the runner's loopback (labelled with
            # our pid for the sweeper), so it stays reachable whichever host's link is cut
            runner_address = str(
                ipaddress.ip_address(int(NETWORK.network_address) + next(free) * 4 + 1)
            )
            _ip("addr", "add", f"{runner_address}/32", "dev", "lo", "label", label)
            for i in range(n):
                index = next(_counter)
                namespaces.append(f"{PREFIX}{os.getpid()}h{index}")
                jump = hosts[0].namespace if i >= n - behind and hosts else None
                hosts.append(_make_host(index, next(free), base, runner_address, jump))
        yield hosts
    finally:
        for namespace in namespaces:
            _remove_namespace(namespace)
        if runner_address:
            _ip("addr", "del", f"{runner_address}/32", "dev", "lo", check=False)
        shutil.rmtree(base, ignore_errors=True)


#: a TCP relay a jump host runs for the hosts behind it: what a hypervisor's NAT does for its VMs
_RELAY = """
import asyncio, sys
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
async def serve(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_connection(sys.argv[2], int(sys.argv[3]))
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)
async def main():
    server = await asyncio.start_server(serve, "0.0.0.0", int(sys.argv[1]))
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def relay_through(jump: NetnsHost, target: str, port: int) -> subprocess.Popen[bytes]:
    """Let the hosts behind `jump` reach `target:port` at their gateway address, same port.

    They have no route to the runner's side; the emulated website they call is reached this
    way, as VMs reach the internet through their hypervisor's NAT. Ends with `jump`.
    """
    relay = jump.spawn(sys.executable, "-c", _RELAY, str(port), target, str(port))
    _wait(
        lambda: _listening_inside(jump.namespace, "127.0.0.1", port),
        START_DEADLINE,
        f"the relay on test host {jump.namespace} to listen on port {port}",
    )
    return relay


test_hosts.__test__ = False  # type: ignore[attr-defined]
