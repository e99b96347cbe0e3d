"""Controller start/stop commands that run fcapi's emulated controller on a host.

Demos and tests put these in the inventory instead of `featurecloud controller start`, so the
runner drives the emulator exactly as it drives the real controller and never knows which it
has. The emulator is a long-running process; its pid file lets the stop command find it. The
shell lines themselves are in runner.sites.shell, with every other line a host runs.
"""

from __future__ import annotations

import sys

from fedinfra.inventory import ControllerSpec
from runner.sites.shell import emulator_pid_file, emulator_start, emulator_stop


def controller_spec(
    data_dir: str,
    site_url: str,
    port: int,
    python: str = sys.executable,
    name: str = "fc-controller",
    nice: int = 0,
) -> ControllerSpec:
    """A ControllerSpec whose commands start and stop `python -m fcapi.emulator controller`.

    The stop command is harmless when nothing runs, and waits, with a bound, for the process to
    be gone so that a new controller can take the port. A zombie counts as gone: an orphaned
    controller is reaped by init, which may take a while.

    `nice` lowers the controller's CPU priority: when many controllers on one machine stand in
    for many machines, they should not take the CPU from the runner and the website, which in
    a real federation they would never share.
    """
    pid = emulator_pid_file(data_dir, name)
    return ControllerSpec(
        name=name,
        port=port,
        data_dir=data_dir,
        start=emulator_start(python, site_url, pid, nice),
        stop=emulator_stop(pid),
    )
