"""The `?` screen: every key of the cockpit, read from the bindings themselves so it never drifts."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from k2tui.tui.widgets.body import Grid, PaneBody


class HelpScreen(Screen[None]):
    """A screen of its own rather than a modal over the cockpit: under a modal, every frame composites the
    whole cockpit, dimmed, behind it. Measured in the cockpit at 10,000 trades/s, from the key's event to
    the frame written: p50 42 → 17 ms, p90 106 → 56 ms."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape,question_mark,q", "dismiss", "Close")
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        """`keys`: (the keys, what they do), in the order shown."""
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        table = Grid("key", "what it does", header=False)
        for keys, what in self.keys:
            table.add_row(keys, what)
        with VerticalScroll(id="help") as frame:
            frame.border_title = "Keys"
            frame.border_subtitle = "escape closes this help"  # on the frame: seen however long the list
            yield Static(PaneBody(table))
