"""DLQ pane: the dead-letter entries grouped by reason, browsable with the arrow keys (focus it with
`d`, or click), Enter or a click opening one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message

from k2tui.ingest.dlq import DeadLetter
from k2tui.tui.data import DlqSnapshot
from k2tui.tui.widgets.kafka import TOPIC_PREFIX
from k2tui.tui.widgets.pane import Pane

VISIBLE_ENTRIES = 8
"""Entry lines shown at once; the window follows the cursor through the rest."""


def grouped(snapshot: DlqSnapshot) -> list[DeadLetter]:
    """The entries in the order the pane lists them: by reason, most frequent first; newest first within."""
    rank = {reason: n for n, (reason, _) in enumerate(snapshot.by_reason)}
    newest_first = sorted(snapshot.letters, key=lambda letter: letter.failed_at, reverse=True)
    return sorted(newest_first, key=lambda letter: rank.get(letter.reason, len(rank)))


class DlqPane(Pane):
    can_focus = True
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("up", "move(-1)", "Previous entry", show=False),
        Binding("down", "move(1)", "Next entry", show=False),
        Binding("enter", "open", "Open entry"),
        Binding("escape", "leave", "Leave the DLQ", show=False),
    ]

    @dataclass
    class Opened(Message):
        """The user chose an entry to open."""

        letter_id: str

    def __init__(self) -> None:
        super().__init__("DLQ", id="dlq")
        self.received = False
        self.entries: list[DeadLetter] = []
        self.cursor = 0
        self.by_reason: list[tuple[str, int]] = []
        self.line_entries: list[int | None] = []
        """For each line drawn, the index of the entry on it (None for the other lines), for clicks."""

    def render_snapshot(self, snapshot: DlqSnapshot) -> None:
        chosen = self.chosen
        self.received = True
        self.entries = grouped(snapshot)
        self.by_reason = snapshot.by_reason
        ids = [letter.id for letter in self.entries]
        self.cursor = ids.index(chosen.id) if chosen is not None and chosen.id in ids else 0
        self.draw()

    @property
    def chosen(self) -> DeadLetter | None:
        return self.entries[self.cursor] if self.entries else None

    def draw(self) -> None:
        if not self.by_reason:
            self.line_entries = []
            self.show(Text("no dead letters", style="green"))
            return
        total = sum(n for _, n in self.by_reason)
        hint = "↑↓ choose · enter opens · escape leaves" if self.has_focus else "d to browse"
        counted = f"{total:,} entr{'y' if total == 1 else 'ies'}"
        lines = [Text.assemble((counted, "bold"), (f" · {hint}", "dim"), no_wrap=True)]
        self.line_entries = [None]
        start = min(max(0, self.cursor - VISIBLE_ENTRIES // 2), max(0, len(self.entries) - VISIBLE_ENTRIES))
        if start:
            lines.append(Text(f"  … {start:,} more above", style="dim"))
            self.line_entries.append(None)
        counts = dict(self.by_reason)
        reason = None
        for index in range(start, min(start + VISIBLE_ENTRIES, len(self.entries))):
            letter = self.entries[index]
            if letter.reason != reason:
                reason = letter.reason
                heading = Text.assemble(
                    (reason, "bold"), f" ×{counts.get(reason, 0):,}", no_wrap=True, overflow="ellipsis"
                )
                lines.append(heading)
                self.line_entries.append(None)
            position = letter.position.removeprefix(TOPIC_PREFIX)
            line = Text(
                f"  {letter.id[:8]}  {letter.failed_at:%H:%M:%S}  {letter.source}  {position}",
                style="reverse" if index == self.cursor and self.has_focus else "",
                no_wrap=True,
                overflow="ellipsis",
            )
            lines.append(line)
            self.line_entries.append(index)
        hidden = len(self.entries) - min(start + VISIBLE_ENTRIES, len(self.entries))
        if hidden:
            lines.append(Text(f"  … {hidden:,} more below", style="dim"))
        self.show(*lines)

    def action_move(self, step: int) -> None:
        if self.entries:
            self.cursor = max(0, min(len(self.entries) - 1, self.cursor + step))
            self.draw()

    def action_open(self) -> None:
        if self.chosen is not None:
            self.post_message(self.Opened(self.chosen.id))

    def action_leave(self) -> None:
        self.screen.set_focus(None)

    def watch_has_focus(self, has_focus: bool) -> None:
        """The cursor shows only while the pane has focus; nothing to redraw before data or when down."""
        super().watch_has_focus(has_focus)
        if self.received and not self.has_class("unavailable"):
            self.draw()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or not 0 <= offset.y < len(self.line_entries):
            return
        index = self.line_entries[offset.y]
        if index is not None:
            self.cursor = index
            self.action_open()
