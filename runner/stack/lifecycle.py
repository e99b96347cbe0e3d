"""`--up [--destroy]`: the stack up, the workflow run on its inventory, the stack down again.

With `--destroy` the teardown happens whatever the run did (succeeded, failed, passed its
deadline, was interrupted, never started because `up` failed), exactly once: users of the
dsc-516 benchmark had to clean up by hand whenever a run failed. The runner owns Ctrl-C while
the stack is handled: during `up` it stops pulumi cleanly, during the run it interrupts the run
(whose state is saved), during the teardown it stops waiting and says what is left and the
command that removes it.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from runner.errors import EXIT_INTERRUPTED, EXIT_OK, BadInput, RunInterrupted, RunnerError
from runner.stack.operation import PulumiStack, Result, StackError

Phase = Literal["up", "run", "destroy"]


class StackInterrupted(RunnerError):
    """Ctrl-C while the stack was handled; the message says what became of the stack."""

    exit_code = EXIT_INTERRUPTED


async def around_stack(
    stack: str | None,
    project_dir: Path,
    *,
    up: bool,
    destroy: bool,
    inventory: Path | None,
    run: Callable[[], Awaitable[int]],
) -> int:
    """`run()` as it is, or between `pulumi up` and (with `destroy`) `pulumi destroy`."""
    if not up:
        if destroy:
            raise BadInput(
                "--destroy needs --up (the stack it tears down is the one it brought up)"
            )
        return await run()
    if stack is None or inventory is not None:
        raise BadInput("--up needs --stack NAME, and reads the inventory from that stack")
    if shutil.which("pulumi") is None:
        raise BadInput("--up needs the Pulumi CLI on PATH (https://www.pulumi.com/docs/install/)")
    return await Lifecycle(PulumiStack(stack, project_dir), destroy=destroy).run(run)


class Lifecycle:
    """One stack's up, run and teardown, with the interrupts of each phase."""

    def __init__(self, stack: PulumiStack, *, destroy: bool) -> None:
        self.stack = stack
        self.destroy = destroy
        self.phase: Phase = "up"
        self.stop = asyncio.Event()
        self.interrupts = 0
        self._run_task: asyncio.Future[int] | None = None

    async def run(self, run: Callable[[], Awaitable[int]]) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
        try:
            return await self._up_run_down(run)
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    async def _up_run_down(self, run: Callable[[], Awaitable[int]]) -> int:
        try:
            code = await self._up_and_run(run)
        except BaseException as exc:
            if not self.destroy:
                raise
            left = await self._teardown()
            raise self._after(exc, left) from None
        if self.destroy:
            left = await self._teardown()
            if left and code == EXIT_OK:
                raise StackError(f"the run succeeded but {left}")
        return code

    async def _up_and_run(self, run: Callable[[], Awaitable[int]]) -> int:
        result = await self.stack.run("up", self.stop)
        if result.stopped:
            raise StackInterrupted(f"interrupted during `pulumi up` of stack {self.stack.name}")
        if not result.ok:
            raise StackError(f"stack {self.stack.name}: {result.why}")
        self.phase = "run"
        self._run_task = asyncio.ensure_future(run())
        try:
            return await self._run_task
        except asyncio.CancelledError:
            if self.interrupts == 0:
                raise  # the runner itself is being cancelled, not by a Ctrl-C
            raise StackInterrupted("interrupted before the run started") from None

    async def _teardown(self) -> str:
        """`pulumi destroy` once; "" when the stack is empty, else what is left and how to go on."""
        self.phase = "destroy"
        self.stop = asyncio.Event()
        self.stack.say("destroy: tearing the stack down (Ctrl-C to stop waiting)")
        try:
            result = await self.stack.run("destroy", self.stop)
        except StackError as exc:  # pulumi could not even start: the stack is as it was
            result = Result(False, str(exc))
        if result.ok:
            return ""
        left = (
            f"{result.why}; left in stack {self.stack.name}: {self.stack.resources.left()}; "
            f"remove it with: {self.stack.destroy_command}"
        )
        print(f"runner: {left}", file=sys.stderr, flush=True)
        return left

    def _after(self, exc: BaseException, left: str) -> BaseException:
        """The failure to report once the teardown is over: the run's own, or the interrupt's."""
        gone = "still holds resources (see above)" if left else "was destroyed"
        where = f"stack {self.stack.name} {gone}"
        if isinstance(exc, RunInterrupted):
            return StackInterrupted(
                f"interrupted; run {exc.run_id} is saved in {exc.run_dir}; {where}"
            )
        if isinstance(exc, StackInterrupted):
            return StackInterrupted(f"{exc}; {where}")
        return exc  # the run's own failure; the teardown's lines on stderr say the rest

    def _on_interrupt(self) -> None:
        self.interrupts += 1
        if self.phase == "run":
            if self.destroy:
                self.stack.say("interrupted: stopping the run, then tearing the stack down")
            if self._run_task is not None:
                self._run_task.cancel()
            return
        self.stack.say(f"interrupted: stopping `pulumi {self.phase}`")
        self.stop.set()
