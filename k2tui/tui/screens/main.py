"""The main screen: every pane at once, in three columns on wide terminals and two on medium ones, and
on small ones (down to 80x24) as tabs of a few panes each. Each pane is one widget in every layout: the
layout and the tab are the screen's CSS classes, so a switch moves nothing and the app finds its panes
the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, Tab, Tabs

from k2tui.tui.widgets.checklists import ChecklistsPane
from k2tui.tui.widgets.consumer import ConsumerPane
from k2tui.tui.widgets.dlq import DlqPane
from k2tui.tui.widgets.event_log import EventLog
from k2tui.tui.widgets.fault_banner import FaultBanner
from k2tui.tui.widgets.iceberg import IcebergPane
from k2tui.tui.widgets.kafka import KafkaPane
from k2tui.tui.widgets.key_bar import KeyBar
from k2tui.tui.widgets.services import ServicesPane
from k2tui.tui.widgets.streams import StreamsPane

WIDE_FROM = 160
"""From this many columns on, three columns: Overview, Lake, then Streams over the Event log (narrower,
three columns would cut the tables' columns short)."""
COMPACT_BELOW = 110
"""Narrower than this many columns, one tab at a time; in between, two columns."""
TABS = {"overview": "Overview", "streams": "Streams", "lake": "Lake", "events": "Events"}
"""The compact layout's tabs, keys 1..4 in this order. Each shows the part of the screen with its id:
#overview (Services, Kafka, Consumer), #streams, #lake (Iceberg, DLQ, Checklists), #events."""


def layout_for(width: int) -> str:
    """The screen class of the layout for a terminal `width` columns wide."""
    if width >= WIDE_FROM:
        return "wide"
    return "medium" if width >= COMPACT_BELOW else "compact"


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        *(
            Binding(str(n), f"show_tab('{tab}')", f"{title} tab", show=False)
            for n, (tab, title) in enumerate(TABS.items(), start=1)
        ),
        Binding("left_square_bracket", "cycle_tab(-1)", "Previous tab", show=False, key_display="["),
        Binding("right_square_bracket", "cycle_tab(1)", "Next tab", show=False, key_display="]"),
    ]

    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__(classes="-tab-overview")
        self.clock = clock
        self.layout_name = ""
        self.tab = "overview"

    def compose(self) -> ComposeResult:
        # The layout class goes on before the panes exist: set later, it restyles every widget again.
        self.layout_name = layout_for(self.app.size.width)
        self.add_class(self.layout_name)
        yield Header()
        yield FaultBanner()
        yield Tabs(
            *(Tab(f"{n} {title}", id=f"tab-{tab}") for n, (tab, title) in enumerate(TABS.items(), 1)),
            id="tabs",
        )
        with Horizontal(id="cockpit"):
            with VerticalScroll(id="panes"):
                with Vertical(id="overview"):
                    yield ServicesPane()
                    yield KafkaPane()
                    yield ConsumerPane()
                with Vertical(id="lake"):
                    yield IcebergPane()
                    yield DlqPane()
                    yield ChecklistsPane()
            with Vertical(id="tape"):
                yield StreamsPane()
                yield EventLog(self.clock)
        yield KeyBar()

    def on_resize(self, event: events.Resize) -> None:
        layout = layout_for(event.size.width)
        if layout != self.layout_name:
            self.remove_class("wide", "medium", "compact")
            self.add_class(layout)
            self.layout_name = layout
            self.refresh_bindings()

    @on(Tabs.TabActivated)
    def switch_tab(self, event: Tabs.TabActivated) -> None:
        tab = (event.tab.id or "").removeprefix("tab-")
        if tab != self.tab:  # the first activation names the tab already set; each change restyles all
            self.remove_class(f"-tab-{self.tab}")
            self.tab = tab
            self.add_class(f"-tab-{self.tab}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The tab keys work only where there are tabs."""
        return self.layout_name == "compact" if action in {"show_tab", "cycle_tab"} else True

    def action_show_tab(self, tab: str) -> None:
        self.query_one(Tabs).active = f"tab-{tab}"

    def action_cycle_tab(self, step: int) -> None:
        tabs = self.query_one(Tabs)
        if step > 0:
            tabs.action_next_tab()
        else:
            tabs.action_previous_tab()

    def reveal(self, pane: Widget) -> None:
        """Bring up the tab that shows `pane`, for a key that acts on a pane another tab may hide."""
        for tab in TABS:
            if self.query_one(f"#{tab}") in pane.ancestors_with_self:
                self.action_show_tab(tab)
                return
