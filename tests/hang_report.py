"""Just before pytest-timeout stops a test, print the stacks of its asyncio tasks.

pytest-timeout prints only the threads, and a stuck asyncio test shows there as an event loop waiting
in select(): the task stacks say which await never returned.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Iterator

import pytest

WARNING_S = 10.0
"""How long before the timeout the stacks are printed (the loop must still be running to print them)."""


def _awaiting(coro: object) -> Iterator[str]:
    """Where a suspended coroutine waits, outermost first, through every await it is inside
    (Task.print_stack shows only the outermost frame)."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            yield f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


def _print_tasks(loop: asyncio.AbstractEventLoop, test: str) -> None:
    tasks = asyncio.all_tasks(loop)
    heading = f"--- {test}: {len(tasks)} asyncio tasks, {WARNING_S:g} s before its timeout ---"
    print(f"\n{heading}", file=sys.stderr)
    for task in tasks:
        print(task.get_name(), *_awaiting(task.get_coro()), sep="\n", file=sys.stderr)


def _report(test: str) -> None:
    for loop in (o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)):
        if loop.is_running():
            loop.call_soon_threadsafe(_print_tasks, loop, test)


def _timeout(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    timeout = _timeout(item)
    timer = threading.Timer(max(timeout - WARNING_S, 0.0), _report, args=(item.nodeid,))
    timer.daemon = True
    if timeout > WARNING_S:
        timer.start()
    try:
        yield
    finally:
        timer.cancel()
