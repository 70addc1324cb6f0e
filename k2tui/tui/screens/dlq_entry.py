"""One dead letter, as `k2tui dlq show` prints it: the error, where it came from, its times, the fields
that decoded and the payload pretty-printed; `p` replays it as `k2tui dlq replay --id` does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState

from k2tui.tui.dead_letters import DeadLetterDesk, EntryView, ReplayResult
from k2tui.tui.widgets.key_bar import KeyBar

VERDICT_STYLES = {"replayed": "bold green", "already replayed": "bold", "still fails": "bold red"}


@dataclass
class EntryLoaded(Message):
    view: EntryView


@dataclass
class Replayed(Message):
    result: ReplayResult


def entry_body(view: EntryView) -> Group:
    facts = Table(box=None, show_header=False, pad_edge=False)
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    for name, value in view.facts.items():
        facts.add_row(name, Text(value, style="bold red" if name == "error" else ""))
    parts: list[Text | Table] = [facts]
    if view.decoded is not None:
        parts += [Text("\ndecoded", style="bold underline"), Text(view.decoded)]
    parts += [Text(f"\npayload ({view.payload_bytes:,} bytes)", style="bold underline"), Text(view.payload)]
    return Group(*parts)


class DlqEntryScreen(Screen[None]):
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("p", "replay", "Replay"),
    ]

    def __init__(self, desk: DeadLetterDesk, letter_id: str) -> None:
        super().__init__()
        self.desk = desk
        self.letter_id = letter_id
        self.replaying: Worker[None] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="dlq-entry") as frame:
            frame.border_title = f"dead letter {self.letter_id}"
            yield Static(Text("reading the entry…", style="dim"), id="dlq-entry-body")
        yield Static(Text("p replays this entry to Kafka", style="dim"), id="dlq-entry-status")
        yield KeyBar()

    def on_mount(self) -> None:
        self.load()

    def load(self) -> None:
        self.run_worker(
            self._load(), name="dlq-entry", group="dlq-entry", exclusive=True, exit_on_error=False
        )

    async def _load(self) -> None:
        self.post_message(EntryLoaded(await self.desk.entry(self.letter_id)))

    @on(EntryLoaded)
    def show_entry(self, message: EntryLoaded) -> None:
        self.query_one("#dlq-entry-body", Static).update(entry_body(message.view))

    def action_replay(self) -> None:
        if self.replaying is not None and not self.replaying.is_finished:
            self.notify("the replay is still running")
            return
        self.status(Text(f"replaying {self.letter_id}…", style="bold"))
        self.replaying = self.run_worker(self._replay(), name="dlq-replay", exit_on_error=False)

    async def _replay(self) -> None:
        self.post_message(Replayed(await self.desk.replay(self.letter_id)))

    @on(Replayed)
    def show_replay(self, message: Replayed) -> None:
        result = message.result
        self.status(
            Text.assemble(
                (result.verdict, VERDICT_STYLES.get(result.verdict, "bold red")), f": {result.detail}"
            )
        )
        self.load()  # the facts now name the replay

    @on(Worker.StateChanged)
    def show_failure(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        reason = str(event.worker.error) or type(event.worker.error).__name__
        if event.worker.name == "dlq-replay":
            self.status(Text(f"replay failed: {reason}", style="bold red"))
        else:
            self.query_one("#dlq-entry-body", Static).update(Text(f"unavailable: {reason}", style="bold red"))

    def status(self, text: Text) -> None:
        self.query_one("#dlq-entry-status", Static).update(text)
