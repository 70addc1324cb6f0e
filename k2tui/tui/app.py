"""The cockpit app: one refresh tick launches a worker per source, results come back as messages, and
the panes are redrawn at most ten times a second whatever the sources do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.worker import Worker, WorkerState

from k2tui.tui.data import (
    ConsumerSnapshot,
    DlqSnapshot,
    IcebergSnapshot,
    KafkaSnapshot,
    LagTrends,
    ServicesSnapshot,
    Sources,
)
from k2tui.tui.screens.help import HelpScreen
from k2tui.tui.screens.main import MainScreen
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


@dataclass
class Refreshed(Message):
    """A worker fetched a source; `snapshot` is what the source returned."""

    source: str
    snapshot: Any


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CockpitApp(App[None]):
    TITLE = "k2tui"
    SUB_TITLE = "K2 market-data cockpit"
    CSS_PATH = Path(__file__).parent / "styles" / "k2tui.tcss"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]

    def __init__(
        self, sources: Sources, *, clock: Callable[[], datetime] = _utc_now, refresh_s: float = REFRESH_S
    ) -> None:
        super().__init__()
        self.sources = sources
        self.refresh_s = refresh_s
        self.fetchers: dict[str, Callable[[], Awaitable[Any]]] = {
            "services": sources.services,
            "kafka": sources.kafka,
            "iceberg": sources.iceberg,
            "consumer": sources.consumer,
            "dlq": sources.dlq,
        }
        self.trends = LagTrends()
        self.pending: dict[str, Any] = {}
        """Each source's latest result (a snapshot, or the exception) not yet drawn."""
        self.failing: dict[str, str] = {}
        self.seen: set[str] = set()
        self.running: dict[str, Worker[Any]] = {}
        self.main = MainScreen(clock)

    async def on_mount(self) -> None:
        await self.push_screen(self.main)
        self.refresh_sources()
        self.set_interval(self.refresh_s, self.refresh_sources)
        self.set_interval(REDRAW_S, self.redraw)

    def refresh_sources(self) -> None:
        """Start a fetch per source, unless that source's last fetch is still under way."""
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
        self.pending[message.source] = message.snapshot

    @on(Worker.StateChanged)
    def keep_failure(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.name in self.fetchers:
            self.pending[event.worker.name] = event.worker.error

    def redraw(self) -> None:
        """Draw what arrived since the last redraw, in one batch (also under the help screen)."""
        if not self.pending:
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
        if name in self.failing:
            self.log_event(f"{name}: back after {self.failing.pop(name)}", "green")
        elif name not in self.seen:
            self.log_event(f"{name}: first refresh")
        self.seen.add(name)

    def _show_failure(self, name: str, error: BaseException) -> None:
        reason = str(error) or error.__class__.__name__
        self.main.query_one(f"#{name}", Pane).unavailable(reason)
        if self.failing.get(name) != reason:
            self.log_event(f"{name}: unavailable: {reason}", "red")
        self.failing[name] = reason

    def log_event(self, message: str, style: str = "") -> None:
        self.main.query_one(EventLog).event(message, style)

    def action_help(self) -> None:
        self.push_screen(HelpScreen([b for b in self.BINDINGS if isinstance(b, Binding)]))
