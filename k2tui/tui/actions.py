"""What the cockpit's keys do to the pipeline: the same library calls the CLI makes, behind a protocol.

The app knows only `Actions`, so its tests hand it deterministic fakes; `LiveActions` acts on the stack
the settings describe. Each live call runs on an event loop of its own in a thread, so a validation's
heavy steps (decoding thousands of messages, scanning the lake) never stall the cockpit's input; a
cancelled caller cancels the call there and waits for its clean-up. Nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from k2tui.stack.supervisor import FaultAction, LocalStack, ServiceState
from k2tui.validate.env import ValidationEnv

if TYPE_CHECKING:
    from k2tui.validate.faults import Fault
    from k2tui.validate.live_faults import Injected, Recovery
    from k2tui.validate.procedure import ProcedureReport, ProgressSink

T = TypeVar("T")
CONSUMER = "consumer"


class Actions(Protocol):
    """Each method says what it did in a sentence, or raises with the reason it could not."""

    def faults(self) -> Sequence[Fault]: ...
    def procedures(self) -> Sequence[tuple[str, str]]:
        """(name, summary) of every validation procedure, in menu order."""
        ...

    async def toggle_consumer(self) -> str: ...
    async def inject(self, fault: Fault) -> Injected: ...
    async def heal(self, fault: Fault) -> str: ...
    async def recover(self, injected: Injected) -> Recovery: ...
    async def run_validation(self, name: str, on_event: ProgressSink) -> ProcedureReport:
        """Run one procedure with its defaults; `on_event` may be called from another thread."""
        ...


class LiveActions:
    """The stack of the given settings, acted on through the functions `k2tui fault` and `validate` use."""

    def __init__(self, stack: LocalStack) -> None:
        self.env = ValidationEnv(stack.layout.settings, stack)

    # The fault and validation machinery is imported on first use, not at start: it pulls in the whole
    # pipeline (a second of imports) before the cockpit could draw its first frame.

    def faults(self) -> Sequence[Fault]:
        from k2tui.validate.live_faults import MENU

        return MENU

    def procedures(self) -> Sequence[tuple[str, str]]:
        from k2tui.validate.procedures import PROCEDURES

        return [(entry.name, entry.summary) for entry in PROCEDURES.values()]

    async def toggle_consumer(self) -> str:
        return await in_own_loop(self._toggle_consumer())

    async def _toggle_consumer(self) -> str:
        status = (await self.env.statuses()).get(CONSUMER)
        running = status is not None and status.pid is not None and status.state is not ServiceState.EXITED
        return await self.env.fault(CONSUMER, FaultAction.STOP if running else FaultAction.START)

    async def inject(self, fault: Fault) -> Injected:
        from k2tui.validate.live_faults import inject

        return await in_own_loop(inject(self.env, fault))

    async def heal(self, fault: Fault) -> str:
        return await in_own_loop(fault.heal(self.env))

    async def recover(self, injected: Injected) -> Recovery:
        from k2tui.validate.live_faults import recover

        return await in_own_loop(recover(self.env, injected))

    async def run_validation(self, name: str, on_event: ProgressSink) -> ProcedureReport:
        from k2tui.validate.procedures import run_validations

        reports = await in_own_loop(run_validations(self.env, [(name, None)], on_event))
        return reports[0]


async def in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Await `coroutine` run to completion on a new event loop in a worker thread.

    Cancelling the caller cancels the coroutine on its loop and waits until it has finished cleaning
    up (a procedure's always-steps), then re-raises the cancellation.
    """
    loop = asyncio.new_event_loop()
    task = loop.create_task(coroutine)
    done = asyncio.get_running_loop().run_in_executor(None, _run_to_end, loop, task)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        with contextlib.suppress(RuntimeError):  # the loop already closed: nothing left to cancel
            loop.call_soon_threadsafe(task.cancel)
        with contextlib.suppress(BaseException):
            await done
        raise


def _run_to_end(loop: asyncio.AbstractEventLoop, task: asyncio.Task[T]) -> T:
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(task)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
