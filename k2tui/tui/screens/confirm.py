"""Asking before something disruptive happens: what will happen, then y/enter to go on, n/escape not to."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("y,enter", "dismiss(True)", "Yes"),
        Binding("n,escape", "dismiss(False)", "No"),
    ]

    def __init__(self, title: str, question: str, *, go: str = "Yes") -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.go = go

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm") as frame:
            frame.border_title = self.title_text
            yield Static(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.go} (y)", id="yes", variant="error", compact=True)
                yield Button("Cancel (n)", id="no", compact=True)
            yield Static("y or enter goes ahead · n or escape cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")
