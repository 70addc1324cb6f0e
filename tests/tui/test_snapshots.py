"""Every scene of the cockpit (tests/tui/scenes.py) compared with its stored snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.scenes import SCENES, Scene


@pytest.mark.parametrize("scene", SCENES, ids=[scene.name for scene in SCENES])
def test_scene(snap_compare: Any, scene: Scene) -> None:
    assert snap_compare(scene.app(), terminal_size=scene.size, run_before=scene.steps)
