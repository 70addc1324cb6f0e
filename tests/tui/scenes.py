"""The pictures of the cockpit: each scene is a size and the steps that bring the app to it.

`test_snapshots.py` compares every scene with its stored snapshot, and `python -m tests.tui.screenshot`
saves every scene as SVG and PNG in screenshots/, so the README shows exactly what the tests check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from textual.pilot import Pilot

from k2tui.tui.app import CockpitApp
from tests.tui import operator_scenes, walk_scenes
from tests.tui.fakes import settled_frame, still_app


@dataclass(frozen=True)
class Scene:
    name: str
    size: tuple[int, int]
    steps: Callable[[Pilot[None]], Awaitable[None]] = settled_frame
    """Run on the settled app before the picture is taken."""
    app: Callable[[], CockpitApp] = still_app


SCENES: list[Scene] = [
    Scene("main-160x50", (160, 50)),
    Scene("main-120x40", (120, 40)),
    Scene("main-80x24", (80, 24)),
    Scene("fault-banner", (120, 40), operator_scenes.fault_banner),
    Scene("validation-running", (120, 40), operator_scenes.validation_running),
    Scene("validation-results", (120, 40), operator_scenes.validation_results),
    Scene("checklist", (120, 40), walk_scenes.checklist),
    Scene("dlq-entry", (120, 40), walk_scenes.dlq_entry),
    Scene("main-light-120x40", (120, 40), walk_scenes.scrolled_to_the_end, walk_scenes.light_app),
]
