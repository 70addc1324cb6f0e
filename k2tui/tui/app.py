"""The cockpit app: one refresh tick launches a worker per source, results come back as messages, and
the panes are redrawn at most ten times a second whatever the sources do."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from k2tui.tui.actions import Actions, LiveActions
from k2tui.tui.checklist_book import ChecklistsSnapshot
from k2tui.tui.commands import THEMES, binding_commands
from k2tui.tui.data import (
    ConsumerSnapshot,
    DlqSnapshot,
    IcebergSnapshot,
    KafkaSnapshot,
    LagTrends,
    LiveSources,
    ServicesSnapshot,
    Sources,
    StackEvents,
)
from k2tui.tui.operator import OperatorKeys
from k2tui.tui.screens.checklist_walk import ChecklistChooser, ChecklistScreen
from k2tui.tui.screens.dlq_entry import DlqEntryScreen
from k2tui.tui.screens.help import HelpScreen
from k2tui.tui.screens.main import MainScreen
from k2tui.tui.stream_feed import StreamsSnapshot
from k2tui.tui.stream_keys import StreamKeys
from k2tui.tui.tour import TourKeys
from k2tui.tui.widgets.checklists import ChecklistsPane
from k2tui.tui.widgets.consumer import ConsumerPane
from k2tui.tui.widgets.dlq import DlqPane
from k2tui.tui.widgets.event_log import EventLog
from k2tui.tui.widgets.iceberg import IcebergPane
from k2tui.tui.widgets.kafka import KafkaPane
from k2tui.tui.widgets.pane import Pane
from k2tui.tui.widgets.services import ServicesPane

REFRESH_S = 1.0
REDRAW_S = 0.1
"""The panes are redrawn from the latest results at most this often (10 per second)."""
GC_THRESHOLDS = (20_000, 50, 100)
"""Python's are (700, 10, 10): at 10,000 trades/s that ran a full collection about every second, and
each cost 50-100 ms even with the start-up heap frozen (measured with `k2tui bench tui`)."""


@dataclass
class Refreshed(Message):
    """A worker fetched a source; `snapshot` is what the source returned."""

    source: str
    snapshot: Any


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CockpitApp(TourKeys, StreamKeys, OperatorKeys, App[None]):
    TITLE = "k2tui"
    SUB_TITLE = "K2 market-data cockpit"
    CSS_PATH = Path(__file__).parent / "styles" / "k2tui.tcss"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("f", "faults", "Faults"),
        Binding("h", "heal", "Heal"),
        Binding("T", "tour", "Tour", key_display="T", tooltip="the fault-recovery tour"),
        Binding("v", "validations", "Validate"),
        Binding("c", "checklists", "Checklists"),
        Binding("s", "toggle_consumer", "Consumer on/off"),
        Binding("b", "toggle_stream('binance')", "Binance on/off"),
        Binding("k", "toggle_stream('kraken')", "Kraken on/off"),
        Binding("d", "focus_dlq", "DLQ entries"),
        # In the help and the command palette, not the key bar (it has room for the keys above only).
        Binding("r", "last_results", "Last validation results", show=False),
        Binding("l", "switch_streams", "Streams live/simulator", show=False),
        Binding("t", "toggle_theme", "Light/dark theme", show=False),
    ]

    def __init__(
        self,
        sources: Sources,
        *,
        clock: Callable[[], datetime] = _utc_now,
        refresh_s: float = REFRESH_S,
        theme: str = "dark",
        actions: Actions | None = None,
        tour: bool = False,
        settle_heap: bool = False,
    ) -> None:
        """`actions` defaults to acting on the stack of `sources`, which must then be LiveSources.
        `settle_heap` is for the process that runs only the cockpit (see `_settle_heap`)."""
        super().__init__()
        self.start_tour = tour
        self.heap_to_settle = settle_heap
        if actions is None:
            if not isinstance(sources, LiveSources):
                raise TypeError("CockpitApp needs `actions` unless its sources are LiveSources")
            actions = LiveActions(sources.stack)
        self.setup_operator(actions)
        self.setup_streams(sources.switchboard)
        self.theme = THEMES[theme]
        self.sources = sources
        self.refresh_s = refresh_s
        self.fetchers: dict[str, Callable[[], Awaitable[Any]]] = {
            "services": sources.services,
            "kafka": sources.kafka,
            "iceberg": sources.iceberg,
            "consumer": sources.consumer,
            "dlq": sources.dlq,
            "checklists": sources.checklists,
            "streams": sources.streams,
            "events": sources.stack_events,
        }
        self.trends = LagTrends()
        self.pending: dict[str, Any] = {}
        """Each source's latest result (a snapshot, or the exception) not yet drawn."""
        self.failing: dict[str, str] = {}
        self.seen: set[str] = set()
        self.running: dict[str, Worker[Any]] = {}
        self.main = MainScreen(clock)

    async def on_mount(self) -> None:
        self.refresh_sources()  # the first answers are on their way while the screen is built
        await self.push_screen(self.main)
        self.set_interval(self.refresh_s, self.refresh_sources)
        self.set_interval(REDRAW_S, self.redraw)
        if self.start_tour:
            self.action_tour()

    def refresh_sources(self) -> None:
        """Start a fetch per source, unless that source's last fetch is still under way.

        Not once the app has stopped running: Textual cancels the workers first and stops the timers
        after, so a tick in between would start a fetch that is never run (nor finished).
        """
        if not self.is_running:
            return
        for name, fetch in self.fetchers.items():
            worker = self.running.get(name)
            if worker is None or worker.is_finished:
                self.running[name] = self.run_worker(
                    self._fetch(name, fetch), name=name, group=name, exit_on_error=False
                )

    async def _fetch(self, name: str, fetch: Callable[[], Awaitable[Any]]) -> None:
        self.post_message(Refreshed(name, await fetch()))

    @on(Refreshed)
    def keep_result(self, message: Refreshed) -> None:
        """The latest snapshot replaces an undrawn one; engine events add up, so none is lost."""
        earlier, snapshot = self.pending.get(message.source), message.snapshot
        if isinstance(earlier, StackEvents) and isinstance(snapshot, StackEvents):
            snapshot = earlier.then(snapshot)
        self.pending[message.source] = snapshot

    @on(Worker.StateChanged)
    def keep_failure(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.name in self.fetchers:
            self.pending[event.worker.name] = event.worker.error

    def redraw(self) -> None:
        """Draw what arrived since the last redraw, in one batch, while the main screen is on top.

        Under another screen the results wait: a modal dims the main screen behind it, and redrawing
        through that dimming costs more than the whole refresh, which would slow every key on it.
        """
        # Textual stops running before it removes the screens, while this timer still fires.
        on_top = self.is_running and self.screen_stack and self.screen_stack[-1] is self.main
        if not self.pending or not on_top:
            return
        arrived, self.pending = self.pending, {}
        with self.batch_update():
            for name, result in arrived.items():
                if isinstance(result, BaseException):
                    self._show_failure(name, result)
                else:
                    self._show(name, result)

    def _show(self, name: str, snapshot: Any) -> None:
        screen = self.main
        match snapshot:
            case ServicesSnapshot():
                screen.query_one(ServicesPane).render_snapshot(snapshot)
            case KafkaSnapshot():
                self.trends.record(snapshot)
                screen.query_one(KafkaPane).render_snapshot(snapshot, self.trends)
            case IcebergSnapshot():
                screen.query_one(IcebergPane).render_snapshot(snapshot)
            case ConsumerSnapshot():
                screen.query_one(ConsumerPane).render_snapshot(snapshot)
            case DlqSnapshot():
                screen.query_one(DlqPane).render_snapshot(snapshot)
            case ChecklistsSnapshot():
                screen.query_one(ChecklistsPane).render_snapshot(snapshot)
            case StreamsSnapshot():
                self.show_streams(snapshot)
            case StackEvents():
                for event in snapshot.events:
                    self.log_event(f"{snapshot.backend}: {event.describe()}", "yellow")
        if name in self.failing:
            self.log_event(f"{name}: back after {self.failing.pop(name)}", "green")
        elif name not in self.seen and name != "events":
            self.log_event(f"{name}: first refresh")
        self.seen.add(name)
        if self.heap_to_settle and self.seen.issuperset(self.fetchers):
            self.heap_to_settle = False
            self.call_after_refresh(self._settle_heap)  # once the full frame is on screen

    def _settle_heap(self) -> None:
        """Once every source has answered, and so imported what it imports lazily, take what the process
        holds out of the collector's sight, and collect less often. Left as they were, the libraries'
        millions of objects made each full collection a 300 ms freeze of the screen every few seconds."""
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)

    def _show_failure(self, name: str, error: BaseException) -> None:
        reason = str(error) or error.__class__.__name__
        for pane in self.main.query(f"#{name}").results(Pane):
            pane.unavailable(reason)
        if self.failing.get(name) != reason:
            self.log_event(f"{name}: unavailable: {reason}", "red")
        self.failing[name] = reason

    def log_event(self, message: str, style: str = "") -> None:
        self.main.query_one(EventLog).event(message, style)

    def action_help(self) -> None:
        """Every key that works where `?` was pressed (the app's first, then the screen's and the focused
        pane's), including those the key bar has no room for; keys that do the same share a line."""
        mine = [b for b in self.BINDINGS if isinstance(b, Binding)]
        order = {b.action: n for n, b in enumerate(mine)}

        def rank(binding: Binding) -> tuple[int, bool]:
            """The app's keys in their order, its own key before another bound to the same action."""
            return (order.get(binding.action, len(order)), binding not in mine)

        keys: dict[str, list[str]] = {}
        for binding in sorted((a.binding for a in self.screen.active_bindings.values()), key=rank):
            if binding.description and not binding.system:
                keys.setdefault(binding.description, []).append(self.get_key_display(binding))
        self.push_screen(HelpScreen([(" ".join(displays), what) for what, displays in keys.items()]))

    def action_checklists(self) -> None:
        if self.screen is not self.main:  # the walk starts from the main screen, not over another
            return
        checklists = {c.name: c for c in self.sources.book.checklists()}

        def walk(name: str | None) -> None:
            if name is not None:
                self.push_screen(ChecklistScreen(self.sources.book, checklists[name]))

        self.push_screen(ChecklistChooser(list(checklists.values())), walk)

    def action_focus_dlq(self) -> None:
        if self.screen is self.main:
            pane = self.main.query_one(DlqPane)
            self.main.reveal(pane)
            pane.focus()

    @on(DlqPane.Opened)
    def open_dead_letter(self, message: DlqPane.Opened) -> None:
        self.push_screen(DlqEntryScreen(self.sources.desk, message.letter_id))

    def action_toggle_theme(self) -> None:
        self.theme = THEMES["light" if self.theme == THEMES["dark"] else "dark"]

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's own commands, then every key active where the palette was opened (so a key added to
        any BINDINGS shows up here too), then the theme switch."""
        textual_own = list(super().get_system_commands(screen))
        yield from textual_own
        yield from binding_commands(self, screen, (command.title for command in textual_own))
        other = "light" if self.theme == THEMES["dark"] else "dark"
        yield SystemCommand(f"Switch to {other} theme", "key t", self.action_toggle_theme)
