"""Pictures of the main screen with the fakes, at the widest and the smallest supported sizes."""

from __future__ import annotations

from typing import Any

from tests.tui.fakes import settled_frame, still_app


def test_main_screen_at_120x40(snap_compare: Any) -> None:
    assert snap_compare(still_app(), terminal_size=(120, 40), run_before=settled_frame)


def test_main_screen_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(still_app(), terminal_size=(80, 24), run_before=settled_frame)
