"""The runner's failures: one root, one exit code per kind, one line each for the user.

The CLI catches `RunnerError` alone and exits with the error's `exit_code`, so a new error is
placed by choosing its kind, never by touching the CLI. The tree (each error is defined beside
the code that raises it):

    RunnerError (11 unless its kind says otherwise: the run failed)
    ├── BadInput (2): caught before anything is touched
    │   ├── runner.plan.workflow.WorkflowError
    │   ├── runner.plan.inventory_source.InventorySourceError
    │   ├── runner.plan.credentials.MissingPasswords
    │   └── runner.engine.checkpoint.CheckpointError
    ├── RunFailed: the run cannot go on, for a site or for the project
    ├── runner.sites.base.SiteError: a site unreachable or not doing what was asked
    │   └── HostKeyMismatch, ConnectFailed, CommandTimeout, CommandFailed, NotConnected
    ├── runner.collect.download.NoResults: a site's controller has no result
    ├── runner.collect.unpack.UnsafeArchive: a result zip that was refused
    └── RunInterrupted (130): Ctrl-C during a run; its state is saved for `--resume`

Failures of the platform itself are `fcapi.errors.FcError`s; the runner passes them on as they
are. A project that ended in error is not an exception but an outcome (`EXIT_PROJECT_FAILED`).

The exit codes, one table (README "Exit codes"; tests/runner/test_exit_codes.py runs each):

    0    EXIT_OK              the run completed at every site (`check`: every site ready)
    2    EXIT_BAD_INPUT       arguments, files, passwords, the app: nothing was touched
    7    EXIT_DEADLINE        the run's deadline passed before it completed (fcapi's TIMEOUT)
    10   EXIT_PROJECT_FAILED  the project ended in error on the platform (an app failed)
    11   EXIT_SITES_FAILED    one or more sites failed (`check`: one or more not ready)
    130  EXIT_INTERRUPTED     Ctrl-C; a run's state is saved for `--resume`

A project failure outranks a passed deadline, which outranks a site failure: the first is the
platform's own verdict, and a deadline that passed is why the sites still waiting failed.
"""

from __future__ import annotations

from pathlib import Path

from fcapi.errors import ExitCode

EXIT_OK = int(ExitCode.OK)
#: the same meaning as fcapi's: the input cannot work, and nothing was touched
EXIT_BAD_INPUT = int(ExitCode.USAGE)
EXIT_PROJECT_FAILED = int(ExitCode.PROJECT_FAILED)
#: the same meaning as fcapi's TIMEOUT: the deadline passed before the work was done
EXIT_DEADLINE = int(ExitCode.TIMEOUT)
#: beyond fcapi's: the run itself failed at one or more sites
EXIT_SITES_FAILED = 11
EXIT_INTERRUPTED = 130


class RunnerError(Exception):
    """Base of every runner failure; `str()` is the one line the user reads."""

    exit_code: int = EXIT_SITES_FAILED


class BadInput(RunnerError):
    """Arguments, files or credentials that cannot work; found before anything runs."""

    exit_code = EXIT_BAD_INPUT


class RunFailed(RunnerError):
    """The run cannot go on; one line naming the site (or the project) and what failed."""


class RunInterrupted(RunnerError):
    """Ctrl-C during a run: its state is saved and it can be resumed."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, run_id: str, run_dir: Path) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.run_dir = run_dir
