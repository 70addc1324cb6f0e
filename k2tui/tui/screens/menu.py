"""A modal list to choose one thing from (a fault to inject, a procedure to run); escape chooses nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class MenuScreen(ModalScreen[str | None]):
    """Dismissed with the chosen entry's id, or None."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "dismiss(None)", "Close")
    ]

    def __init__(self, title: str, entries: Sequence[tuple[str, str, str]]) -> None:
        """`entries`: (id, name, one line saying what it is)."""
        super().__init__()
        self.title_text = title
        self.entries = entries

    def compose(self) -> ComposeResult:
        options = [
            Option(Text.assemble((name, "bold"), "\n", (about, "dim")), id=entry_id)
            for entry_id, name, about in self.entries
        ]
        with Vertical(classes="dialog menu") as frame:
            frame.border_title = self.title_text
            yield OptionList(*options)
            yield Static("↑↓ move · enter chooses · escape closes", classes="hint")

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
