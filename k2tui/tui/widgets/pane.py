"""The frame every pane shares: a titled box that shows its data, or why it has none."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from k2tui.tui.widgets.body import PaneBody, Part


class Pane(Static):
    """A titled pane; `show` draws fresh data, `unavailable` says why there is none."""

    DEFAULT_CLASSES = "pane"

    def __init__(self, title: str, *, id: str) -> None:
        self.body = PaneBody(Text("waiting for the first refresh…", style="dim"))
        """What the pane shows now, kept so it can be read back as text."""
        super().__init__(self.body, id=id)
        self.border_title = title

    def show(self, *parts: Part) -> None:
        self.remove_class("unavailable")
        self._draw(PaneBody(*parts))

    def unavailable(self, reason: str) -> None:
        self.add_class("unavailable")
        self._draw(PaneBody(Text(f"unavailable: {reason}", style="bold red")))

    def _draw(self, body: PaneBody) -> None:
        """The screen is laid out again only when the pane's height changes, not on every refresh."""
        width = self.content_region.width
        resized = not width or body.get_height(self.styles, width) != self.body.get_height(self.styles, width)
        self.body = body
        self.update(body, layout=resized)
