"""The `?` screen: every key of the cockpit, read from the bindings themselves so it never drifts."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from k2tui.tui.widgets.body import Grid, PaneBody


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape,question_mark,q", "dismiss", "Close")
    ]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.keys = bindings

    def compose(self) -> ComposeResult:
        table = Grid("key", "what it does", header=False)
        for binding in self.keys:
            table.add_row(binding.key_display or binding.key, binding.description)
        with Vertical(id="help") as frame:
            frame.border_title = "Keys"
            yield Static(PaneBody(table))
            yield Static("escape closes this help", classes="hint")
