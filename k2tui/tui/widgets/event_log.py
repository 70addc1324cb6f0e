"""Event log pane: timestamped lines saying what refreshed and what failed."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime

from rich.text import Text
from textual.widgets import RichLog

EVENT_LINES = 500


class EventLog(RichLog):
    DEFAULT_CLASSES = "pane"

    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__(id="events", max_lines=EVENT_LINES, min_width=20, wrap=True, markup=False)
        self.border_title = "Event log"
        self.clock = clock
        self.recent: deque[str] = deque(maxlen=EVENT_LINES)
        """The lines as plain text, for whoever reads the log back (tests, a later export)."""

    def event(self, message: str, style: str = "") -> None:
        line = f"{self.clock():%H:%M:%S} {message}"
        self.recent.append(line)
        self.write(Text(line, style=style))
