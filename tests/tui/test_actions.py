"""The live actions' runner: the work happens on another thread's loop, and a cancelled caller waits
for that work's clean-up before it gives up (a procedure's always-steps restore what it stopped)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from k2tui.tui.actions import in_own_loop


async def test_the_work_runs_on_another_thread_and_its_result_comes_back() -> None:
    async def where() -> int:
        await asyncio.sleep(0)
        return threading.get_ident()

    assert await in_own_loop(where()) != threading.get_ident()


async def test_an_error_of_the_work_reaches_the_caller() -> None:
    async def broken() -> None:
        raise ValueError("the registry answered 500")

    with pytest.raises(ValueError, match="answered 500"):
        await in_own_loop(broken())


async def test_cancelling_the_caller_cancels_the_work_and_waits_for_its_clean_up() -> None:
    started = threading.Event()
    done: list[str] = []

    async def long_with_clean_up() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.2)  # the clean-up takes a while, and is waited for
            done.append("cleaned up")

    caller = asyncio.create_task(in_own_loop(long_with_clean_up()))
    await asyncio.to_thread(started.wait, 5)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert done == ["cleaned up"]
