"""The frame every pane shares: a titled box that shows its data, or why it has none."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.widgets import Static


class Pane(Static):
    """A titled pane; `show` renders fresh data, `unavailable` says why there is none."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, title: str, *, id: str) -> None:
        self.body: RenderableType = Text("waiting for the first refresh…", style="dim")
        """What the pane shows now, kept so it can be read back as text."""
        super().__init__(self.body, id=id)
        self.border_title = title

    def show(self, body: RenderableType) -> None:
        self.remove_class("unavailable")
        self.body = body
        self.update(body)

    def unavailable(self, reason: str) -> None:
        self.add_class("unavailable")
        self.body = Text(f"unavailable: {reason}", style="bold red")
        self.update(self.body)
