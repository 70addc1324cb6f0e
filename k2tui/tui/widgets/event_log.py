"""Event log pane: timestamped lines saying what refreshed and what failed."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime

from rich.text import Text
from textual import events
from textual.widgets import RichLog

EVENT_LINES = 500


class EventLog(RichLog):
    DEFAULT_CLASSES = "pane"

    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__(id="events", max_lines=EVENT_LINES, min_width=20, wrap=True, markup=False)
        self.border_title = "Event log"
        self.clock = clock
        self.lines_written: deque[Text] = deque(maxlen=EVENT_LINES)
        """Every line kept, to draw them again at a new width: a RichLog wraps a line once, when written,
        and the compact layout writes to the log while another tab hides it."""
        self.drawn_width = 0

    @property
    def recent(self) -> list[str]:
        """The lines as plain text, for whoever reads the log back (tests, a later export)."""
        return [line.plain for line in self.lines_written]

    def event(self, message: str, style: str = "") -> None:
        line = Text(f"{self.clock():%H:%M:%S} {message}", style=style)
        self.lines_written.append(line)
        self.write(line)

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width and width != self.drawn_width:
            self.drawn_width = width
            self.clear()
            for line in self.lines_written:
                self.write(line)
