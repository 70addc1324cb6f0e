"""Waiting in a Pilot test for what the user would wait for, with a bound."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str, seconds: float = 4.0) -> None:
    """Let the app run until `condition` holds; fail naming `what` never happened."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"never: {what}")
