"""A site that is a directory and processes on the runner's own machine.

FeatureCloud allows several controllers on one workstation (each on its own port and data
dir); the demo, the benchmark and many tests run sites this way. It does what the SSH transport
does with the same shell lines (detached start, host upload program), so a local run exercises
the code a real run uses, minus the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fcapi.credentials import scrubbed_environ
from fcapi.files import write_atomic
from runner.sites.base import CommandResult, CommandTimeout, ShellConnection, SiteError

#: how long to wait for a killed process group to be reaped before giving up on it
REAP_TIMEOUT = 5.0
#: threads that spawn and wait for local commands (each running command holds one)
_COMMANDS = ThreadPoolExecutor(max_workers=128, thread_name_prefix="local-site")


def _spawn(command: str, with_stdin: bool) -> subprocess.Popen[bytes]:
    """The command in a session of its own, so killing its group never touches the runner.

    Its environment is the runner's without passwords and tokens: a controller started here
    lives on, and its /proc/PID/environ is readable by the same user as long as it does.
    """
    return subprocess.Popen(
        ["/bin/sh", "-c", command],
        env=scrubbed_environ(),
        stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class LocalConnection(ShellConnection):
    """Sites as local processes: `run` is a subprocess in its own process group."""

    #: the host upload program runs under this machine's python, as on a host under its own
    host_python = sys.executable

    async def connect(self) -> None:
        """Nothing to dial; the workdir is made so that later steps can rely on it."""
        await asyncio.to_thread(Path(self.site.workdir).mkdir, parents=True, exist_ok=True)

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | str | None = None,
        timeout: float,  # noqa: ASYNC109
    ) -> CommandResult:
        """Run a shell command; past `timeout` its whole process group is killed.

        The command gets a session of its own, so killing the group stops its children too
        and never touches the runner.
        """
        data = stdin.encode() if isinstance(stdin, str) else stdin
        loop = asyncio.get_running_loop()
        # Spawning blocks until the child has exec'd, which takes long on a loaded machine:
        # done in the loop it would stall every other site, so spawn and wait in threads.
        proc = await loop.run_in_executor(_COMMANDS, _spawn, command, data is not None)
        try:
            stdout, stderr = await loop.run_in_executor(
                _COMMANDS, functools.partial(proc.communicate, data, timeout)
            )
        except asyncio.CancelledError:
            # the run is stopping (its deadline, Ctrl-C): the command must not outlive it
            _kill_group(proc)
            raise
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await loop.run_in_executor(
                    _COMMANDS, functools.partial(proc.communicate, None, REAP_TIMEOUT)
                )
            raise CommandTimeout(
                self.site.name,
                f"local command still running after {timeout:g} s, killed: {command[:120]}",
            ) from None
        return CommandResult(
            proc.returncode if proc.returncode is not None else -1,
            stdout.decode("utf-8", "replace"),
            stderr.decode("utf-8", "replace"),
        )

    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Write to a temporary name beside the file with its mode, then rename into place."""
        try:
            await asyncio.to_thread(write_atomic, Path(path), data, mode)
        except OSError as exc:
            raise SiteError(self.site.name, f"writing {path} failed: {exc}") from None

    async def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.site.controller.port}"

    async def close(self) -> None:
        """Nothing is held open between calls."""
