"""Controller start/stop commands that run fcapi's emulated controller on a host.

Demos and tests put these in the inventory instead of `featurecloud controller start`, so the
runner drives the emulator exactly as it drives the real controller and never knows which it
has. The emulator is a long-running process; its pid file (beside the data dir, not inside it,
so results stay clean) lets the stop command find it.
"""

from __future__ import annotations

import posixpath
import shlex
import sys

from fedinfra.inventory import ControllerSpec

#: how many 0.1 s checks the stop command makes for the process to exit before it uses KILL
STOP_CHECKS = 50


#: inside the stop loop: a zombie counts as gone. The shell reads its state itself, with no
#: process per check (a hundred sites stop at once); braces doubled for ControllerSpec.render
ZOMBIE_IS_GONE = (
    's=""; read -r s < "/proc/$p/stat" 2>/dev/null; s=${{s##*) }}; [ "${{s%% *}}" = Z ] && break; '
)


def _literal(value: str) -> str:
    """Shell-quote a value and escape braces, since ControllerSpec.render uses str.format."""
    return shlex.quote(value).replace("{", "{{").replace("}", "}}")


def pid_file(data_dir: str, name: str = "fc-controller") -> str:
    return posixpath.join(posixpath.dirname(data_dir.rstrip("/")) or "/", f"{name}.pid")


def controller_spec(
    data_dir: str,
    site_url: str,
    port: int,
    python: str = sys.executable,
    name: str = "fc-controller",
    nice: int = 0,
) -> ControllerSpec:
    """A ControllerSpec whose commands start and stop `python -m fcapi.emulator controller`.

    The stop command is harmless when nothing runs (no pid file, or a stale one), and waits,
    with a bound, for the process to be gone so that a new controller can take the port. A
    zombie counts as gone: an orphaned controller is reaped by init, which may take a while.

    `nice` lowers the controller's CPU priority: when many controllers on one machine stand in
    for many machines, they should not take the CPU from the runner and the website, which in
    a real federation they would never share.
    """
    pid = _literal(pid_file(data_dir, name))
    # With autogroup scheduling (Linux's default) `nice` only ranks processes inside their
    # session, and each detached controller has a session of its own: the session's own
    # priority (/proc/self/autogroup) is lowered too, where the kernel has it.
    niced = (
        f"(echo {int(nice)} > /proc/self/autogroup) 2>/dev/null; exec nice -n {int(nice)} "
        if nice
        else ""
    )
    start = (
        f"{niced}{_literal(python)} -m fcapi.emulator controller --site-url {_literal(site_url)} "
        f"--data-dir {{data_dir}} --host 127.0.0.1 --port {{port}} --pid-file {pid}"
    )
    stop = (
        f"if [ -f {pid} ]; then p=$(cat {pid}); "
        f'if [ -n "$p" ] && kill "$p" 2>/dev/null; then '
        f'i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt {STOP_CHECKS} ]; do '
        + ZOMBIE_IS_GONE
        + "sleep 0.1; i=$((i+1)); done; "
        f'kill -9 "$p" 2>/dev/null; fi; rm -f {pid}; fi; true'
    )
    return ControllerSpec(name=name, port=port, data_dir=data_dir, start=start, stop=stop)
