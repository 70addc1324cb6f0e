"""The bottom line of keys: what the screen and the focused widget answer to; a click presses one.

Textual's Footer mounts a widget per key and mounts them all again whenever the bindings change —
on every screen switch and every focus move — which was a third of the time a key took to show on
screen. This is one line of text, redrawn only when it reads differently.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.content import Content
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Static

GAP = 2


@dataclass(frozen=True)
class KeyEntry:
    key: str
    display: str
    description: str
    enabled: bool

    @property
    def width(self) -> int:
        return len(self.display) + 1 + len(self.description)

    def markup(self) -> str:
        text = f"[bold $footer-key-foreground]{escape(self.display)} [/]{escape(self.description)}"
        return text if self.enabled else f"[dim]{text}[/dim]"


class KeyBar(Static):
    def __init__(self) -> None:
        super().__init__("", markup=False)
        self.entries: list[KeyEntry] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen[object]) -> None:
        if screen is not self.screen:
            return
        entries = self.key_entries()
        if entries != self.entries:
            self.entries = entries
            self.update(Content.from_markup((" " * GAP).join(e.markup() for e in entries)), layout=False)

    def key_entries(self) -> list[KeyEntry]:
        """One entry per action shown (its first key), the command palette's key last."""
        by_action: dict[str, KeyEntry] = {}
        palette: list[KeyEntry] = []
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            entry = KeyEntry(key, self.app.get_key_display(binding), binding.description, active.enabled)
            if key == self.app.COMMAND_PALETTE_BINDING and self.app.ENABLE_COMMAND_PALETTE:
                palette = [KeyEntry(key, entry.display, "palette", active.enabled)]
            elif binding.show and binding.action not in by_action:
                by_action[binding.action] = entry
        return [*by_action.values(), *palette]

    def on_click(self, event: events.Click) -> None:
        start = 0
        for entry in self.entries:
            if start <= event.x < start + entry.width:
                if entry.enabled:
                    self.app.simulate_key(entry.key)
                return
            start += entry.width + GAP
