"""Reading a pane of the cockpit back as plain text, the way a user would read it."""

from __future__ import annotations

import io

from rich.console import Console, RenderableType
from textual.widgets import Static

from k2tui.tui.app import CockpitApp
from k2tui.tui.widgets.pane import Pane


def plain(renderable: RenderableType) -> str:
    out = io.StringIO()
    Console(width=200, file=out).print(renderable)
    return out.getvalue()


def pane_text(app: CockpitApp, pane_id: str) -> str:
    return plain(app.screen.query_one(f"#{pane_id}", Pane).body)


def static_text(widget: Static) -> str:
    """What a Static shows now, as plain text."""
    return plain(widget.content)
