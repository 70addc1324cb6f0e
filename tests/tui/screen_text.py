"""Reading a pane of the cockpit back as plain text, the way a user would read it."""

from __future__ import annotations

import io

from rich.console import Console

from k2tui.tui.app import CockpitApp
from k2tui.tui.widgets.pane import Pane


def pane_text(app: CockpitApp, pane_id: str) -> str:
    out = io.StringIO()
    Console(width=200, file=out).print(app.screen.query_one(f"#{pane_id}", Pane).body)
    return out.getvalue()
