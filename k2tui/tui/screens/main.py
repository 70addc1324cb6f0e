"""The main screen: every pane at once, laid out as a grid that turns compact on small terminals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header

from k2tui.tui.widgets.checklists import ChecklistsPane
from k2tui.tui.widgets.consumer import ConsumerPane
from k2tui.tui.widgets.dlq import DlqPane
from k2tui.tui.widgets.event_log import EventLog
from k2tui.tui.widgets.fault_banner import FaultBanner
from k2tui.tui.widgets.iceberg import IcebergPane
from k2tui.tui.widgets.kafka import KafkaPane
from k2tui.tui.widgets.services import ServicesPane
from k2tui.tui.widgets.streams import StreamsPane

COMPACT_BELOW = 110
"""Narrower than this many columns, the panes go in one scrolling column."""


class MainScreen(Screen[None]):
    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.clock = clock

    def compose(self) -> ComposeResult:
        yield Header()
        yield FaultBanner()
        with VerticalScroll(id="panes"):
            yield ServicesPane()
            yield StreamsPane()
            yield KafkaPane()
            yield IcebergPane()
            yield ConsumerPane()
            yield DlqPane()
            yield ChecklistsPane()
            yield EventLog(self.clock)
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < COMPACT_BELOW, "compact")
