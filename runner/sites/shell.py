"""Every shell line the runner has a site's host run, whichever transport carries it.

Why one module: these lines are what a partner's administrator audits, and what must work under
any POSIX `sh` (dash, busybox, macOS). Kept together they are read, quoted and tested in one
place; the transports only decide how a line reaches the host. Every value that comes from the
inventory or the workflow is quoted with `shlex.quote`.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from importlib import resources

from fedinfra.inventory import SiteEntry

#: how many 0.1 s checks the emulator's stop command makes for the process to exit before KILL
STOP_CHECKS = 50

#: inside the stop loop: a zombie counts as gone. The shell reads its state itself, with no
#: process per check (a hundred sites stop at once); braces doubled for ControllerSpec.render
ZOMBIE_IS_GONE = (
    's=""; read -r s < "/proc/$p/stat" 2>/dev/null; s=${{s##*) }}; [ "${{s%% *}}" = Z ] && break; '
)


def detached_start(site: SiteEntry) -> str:
    """A shell line that starts the controller in the background and returns at once.

    The start command may be a long-running server (the emulator) or a CLI that exits after
    starting a container (`featurecloud controller start`); either way the runner must not hold
    a channel or a pipe open on it, so it gets its own session (`setsid`), survives the channel's
    end (`nohup`), and appends to a log in the site's workdir (a marked section per start) that a
    person can read later.
    """
    workdir = shlex.quote(site.workdir)
    data_dir = shlex.quote(site.controller.data_dir)
    start = shlex.quote(site.controller.start_command)
    detach = "$(command -v setsid)"  # empty where there is none (macOS): nohup alone then
    return (
        f"mkdir -p {workdir} {data_dir} && cd {workdir} && "
        f'echo "== $(date -u +%FT%TZ) start" >>controller.log && '
        f"{{ nohup {detach} sh -c {start} >>controller.log 2>&1 </dev/null & }} && echo started"
    )


def host_upload_program() -> str:
    """The source of runner/sites/hostupload.py, sent to the host's python on stdin."""
    return resources.files("runner.sites").joinpath("hostupload.py").read_text(encoding="utf-8")


def host_upload(
    python: str, controller_port: int, project_id: int, host_path: str, file_name: str
) -> str:
    """`python - ARGS`: the program comes on stdin, so nothing has to be installed on the host."""
    args = [str(controller_port), str(project_id), host_path, file_name]
    return " ".join([shlex.quote(python), "-", *map(shlex.quote, args)])


def unreadable_files(paths: Sequence[str]) -> str:
    """Prints, one a line, each of `paths` that is not a readable file (a folder counts)."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    return f'for f in {quoted}; do [ -r "$f" ] && [ ! -d "$f" ] || printf "%s\\n" "$f"; done'


def make_dir(path: str) -> str:
    return f"mkdir -p {shlex.quote(path)}"


def noting_process_group(command: str, pid_file: str) -> str:
    """`command` under a wrapper that notes its process group in `pid_file` while it runs.

    Over SSH nothing else can stop a command: sshd refuses `signal` requests for root logins
    and closing the channel kills nothing; `kill_noted_group` reads the file to kill it.
    """
    return f"echo $$ > {pid_file}; sh -c {shlex.quote(command)}; rc=$?; rm -f {pid_file}; exit $rc"


def kill_noted_group(pid_file: str) -> str:
    return f'p=$(cat {pid_file} 2>/dev/null) && kill -KILL -- "-$p"; rm -f {pid_file}'


def _literal(value: str) -> str:
    """Shell-quote a value and escape braces, since ControllerSpec.render uses str.format."""
    return shlex.quote(value).replace("{", "{{").replace("}", "}}")


def emulator_pid_file(data_dir: str, name: str = "fc-controller") -> str:
    """Beside the data dir, not inside it, so that results stay clean."""
    return posixpath.join(posixpath.dirname(data_dir.rstrip("/")) or "/", f"{name}.pid")


def emulator_start(python: str, site_url: str, pid_file: str, nice: int = 0) -> str:
    """`python -m fcapi.emulator controller ...` as a ControllerSpec template ({data_dir}, {port}).

    With autogroup scheduling (Linux's default) `nice` only ranks processes inside their
    session, and each detached controller has a session of its own: the session's own
    priority (/proc/self/autogroup) is lowered too, where the kernel has it.
    """
    niced = (
        f"(echo {int(nice)} > /proc/self/autogroup) 2>/dev/null; exec nice -n {int(nice)} "
        if nice
        else ""
    )
    return (
        f"{niced}{_literal(python)} -m fcapi.emulator controller --site-url {_literal(site_url)} "
        f"--data-dir {{data_dir}} --host 127.0.0.1 --port {{port}} --pid-file {_literal(pid_file)}"
    )


def emulator_stop(pid_file: str) -> str:
    """Stop the process `pid_file` names and wait, bounded, until it is gone (or a zombie).

    Harmless when nothing runs (no pid file, or a stale one), so that a stop may be repeated.
    """
    pid = _literal(pid_file)
    return (
        f"if [ -f {pid} ]; then p=$(cat {pid}); "
        f'if [ -n "$p" ] && kill "$p" 2>/dev/null; then '
        f'i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt {STOP_CHECKS} ]; do '
        + ZOMBIE_IS_GONE
        + "sleep 0.1; i=$((i+1)); done; "
        f'kill -9 "$p" 2>/dev/null; fi; rm -f {pid}; fi; true'
    )
