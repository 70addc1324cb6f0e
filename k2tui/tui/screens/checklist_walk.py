"""Walking a checklist (`c`): choose one, then go item by item — run an item's linked checks and read
their verdicts and evidence, or confirm a manual item with a note; `x` exports the list as Markdown.

Each change is saved by the checklist book (the same functions `k2tui checklist run|confirm|export`
use), so the main screen's Checklists pane and the CLI see it straight away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Header, Input, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from k2tui.tui.checklist_book import ChecklistBook
from k2tui.tui.widgets.key_bar import KeyBar
from k2tui.validate.checklist import Checklist, ChecklistItem, WalkEvent
from k2tui.validate.procedure import ProcedureStarted, StepFinished, StepProgress, StepStarted
from k2tui.validate.progress import ItemProgress, ItemStatus, Progress

STATUS_STYLES = {
    ItemStatus.PASSED: "bold green",
    ItemStatus.CONFIRMED: "bold green",
    ItemStatus.FAILED: "bold red",
    ItemStatus.REFUSED: "bold red",
    ItemStatus.SKIPPED: "bold magenta",
    ItemStatus.PENDING: "dim",
}


FAILURES = {
    "walk-load": "could not read the progress",
    "walk-run": "the run stopped",
    "walk-confirm": "not saved",
    "walk-export": "not exported",
}
"""How the status line names each worker that failed."""


class ChecklistChooser(ModalScreen[str | None]):
    """Which checklist to walk; dismissed with its name, or None."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "close", "Close")
    ]

    def __init__(self, checklists: list[Checklist]) -> None:
        super().__init__()
        self.checklists = checklists

    def compose(self) -> ComposeResult:
        options = [
            Option(
                Text.assemble((c.title, "bold"), f"  {len(c.items)} items\n", (c.when, "dim")),
                id=c.name,
            )
            for c in self.checklists
        ]
        with Vertical(id="checklist-chooser") as frame:
            frame.border_title = "Walk a checklist"
            yield OptionList(*options)
            yield Static("enter walks it · escape closes", classes="hint")

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)


@dataclass
class ProgressLoaded(Message):
    progress: Progress


@dataclass
class WalkProgressed(Message):
    """A linked procedure moved on; `done` of `total` steps, and what it is doing."""

    text: str
    done: float
    total: int


@dataclass
class ItemSaved(Message):
    item: ChecklistItem
    entry: ItemProgress


@dataclass
class Exported(Message):
    path: Path


def item_line(item: ChecklistItem, entry: ItemProgress) -> Text:
    """Its status, its text, and "(manual)" when a person confirms it rather than checks."""
    return Text.assemble(
        (f"{entry.status.value:<10}", STATUS_STYLES[entry.status]),
        item.text,
        (" (manual)" if item.manual else "", "dim"),
    )


def item_detail(item: ChecklistItem, entry: ItemProgress) -> Group:
    """What the item asks, what it links to (or how a person checks it), and its last outcome."""
    lines = [Text(item.text, style="bold"), Text(f"id {item.id}", style="dim"), Text()]
    if item.manual:
        lines += [Text("manual: m confirms it with a note", style="bold"), Text(item.hint), Text()]
    else:
        lines += [
            Text.assemble(("checks: ", "bold"), ", ".join(item.links)),
            Text("enter or r runs them", style="dim"),
            Text(),
        ]
    when = f" at {entry.when:%Y-%m-%d %H:%M} UTC" if entry.when else ""
    lines.append(
        Text.assemble(
            ("last outcome: ", "bold"), (entry.status.value.upper(), STATUS_STYLES[entry.status]), when
        )
    )
    if entry.note:
        lines.append(Text.assemble(("note: ", "bold"), entry.note))
    if entry.evidence:
        lines += [Text(), Text("evidence", style="bold underline")]
        lines += [Text(line, style="" if line.startswith("  ") else "bold") for line in entry.evidence]
    return Group(*lines)


def describe(event: WalkEvent, procedure_titles: dict[str, str]) -> WalkProgressed | None:
    """A procedure event as a status line and the steps done so far (None for those that say nothing)."""
    if isinstance(event, ProcedureStarted):
        procedure_titles[event.procedure] = event.title
        return WalkProgressed(f"{event.title}: starting", 0, len(event.steps))
    if not isinstance(event, StepStarted | StepProgress | StepFinished):
        return None
    step = (
        f"{procedure_titles.get(event.procedure, event.procedure)}: step {event.index + 1} of {event.total}"
    )
    if isinstance(event, StepStarted):
        return WalkProgressed(f"{step}, {event.title}", event.index, event.total)
    if isinstance(event, StepProgress):
        return WalkProgressed(f"{step}, {event.detail}", event.index + (event.fraction or 0.0), event.total)
    return WalkProgressed(f"{step} done", event.index + 1, event.total)


class ChecklistScreen(Screen[None]):
    """One checklist's items with their status, the chosen item's detail, and what a run is doing."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "run", "Run checks"),
        Binding("m", "confirm", "Confirm with a note"),
        Binding("x", "export", "Export Markdown"),
    ]

    def __init__(self, book: ChecklistBook, checklist: Checklist) -> None:
        super().__init__()
        self.book = book
        self.checklist = checklist
        self.progress = Progress(environment="")
        self.running: Worker[None] | None = None
        self.procedure_titles: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="walk"):
            items = OptionList(id="walk-items")
            items.border_title = self.checklist.title
            yield items
            with VerticalScroll(id="walk-detail") as detail:
                detail.border_title = "Item"
                yield Static(id="walk-item")
        with Vertical(id="walk-foot"):
            yield ProgressBar(id="walk-bar", show_eta=False)
            yield Static(Text(self.checklist.when, style="dim"), id="walk-status")
            yield Input(placeholder="note: what you verified (enter saves, escape cancels)", id="walk-note")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#walk-bar").display = False
        self.query_one("#walk-note").display = False
        self.run_worker(self._load(), name="walk-load", exit_on_error=False)

    async def _load(self) -> None:
        self.post_message(ProgressLoaded(await self.book.progress()))

    @on(ProgressLoaded)
    def show_progress(self, message: ProgressLoaded) -> None:
        self.progress = message.progress
        self.sub_title = f"{message.progress.environment}: {self.checklist.when}"
        items = self.query_one("#walk-items", OptionList)
        items.clear_options()
        items.add_options(
            Option(item_line(item, self.entry(item)), id=item.id) for item in self.checklist.items
        )
        items.highlighted = 0
        items.focus()

    def entry(self, item: ChecklistItem) -> ItemProgress:
        return self.progress.item(self.checklist.name, item.id)

    @property
    def chosen(self) -> ChecklistItem | None:
        highlighted = self.query_one("#walk-items", OptionList).highlighted
        return None if highlighted is None else self.checklist.items[highlighted]

    @on(OptionList.OptionHighlighted, "#walk-items")
    def show_item(self) -> None:
        item = self.chosen
        if item is not None:
            self.query_one("#walk-item", Static).update(item_detail(item, self.entry(item)))

    @on(OptionList.OptionSelected, "#walk-items")
    def select_item(self) -> None:
        self.action_run()

    def action_run(self) -> None:
        item = self.chosen
        if item is None:
            return
        if item.manual:
            self.notify(f"{item.id} is confirmed by a person: press m to confirm it with a note")
            return
        if self.running is not None and not self.running.is_finished:
            self.notify("a run is under way: wait for its verdict")
            return
        self.status(Text(f"running the checks of {item.id}…", style="bold"))
        self.running = self.run_worker(self._run(item), name="walk-run", exit_on_error=False)

    async def _run(self, item: ChecklistItem) -> None:
        def on_event(event: WalkEvent) -> None:
            progressed = describe(event, self.procedure_titles)
            if progressed is not None:
                self.post_message(progressed)

        entry = await self.book.run_item(self.checklist, item, on_event)
        self.post_message(ItemSaved(item, entry))

    @on(WalkProgressed)
    def show_run(self, message: WalkProgressed) -> None:
        bar = self.query_one("#walk-bar", ProgressBar)
        bar.display = True
        bar.update(total=message.total, progress=message.done)
        self.status(Text(message.text))

    def action_confirm(self) -> None:
        item = self.chosen
        if item is None:
            return
        if not item.manual:
            self.notify(f"{item.id} is judged by its checks: press r to run them")
            return
        note = self.query_one("#walk-note", Input)
        note.display = True
        note.value = ""
        note.focus()
        self.status(Text(f"confirming {item.id}: {item.hint}"))

    @on(Input.Submitted, "#walk-note")
    def save_note(self, event: Input.Submitted) -> None:
        item = self.chosen
        if item is None:
            return
        if not event.value.strip():
            self.notify("say in the note what you verified", severity="warning")
            return
        self.close_note()
        self.run_worker(self._confirm(item, event.value), name="walk-confirm", exit_on_error=False)

    async def _confirm(self, item: ChecklistItem, note: str) -> None:
        self.post_message(ItemSaved(item, await self.book.confirm(self.checklist, item, note)))

    def close_note(self) -> None:
        self.query_one("#walk-note").display = False
        self.query_one("#walk-items").focus()

    @on(ItemSaved)
    def show_saved(self, message: ItemSaved) -> None:
        item, entry = message.item, message.entry
        self.progress.record(self.checklist.name, item.id, entry)
        index = self.checklist.items.index(item)
        items = self.query_one("#walk-items", OptionList)
        items.replace_option_prompt_at_index(index, item_line(item, entry))
        self.query_one("#walk-bar").display = False
        self.show_item()
        self.status(
            Text.assemble(
                (entry.status.value.upper(), STATUS_STYLES[entry.status]), f" {item.id}: {entry.note} (saved)"
            )
        )

    def action_export(self) -> None:
        self.run_worker(self._export(), name="walk-export", exit_on_error=False)

    async def _export(self) -> None:
        self.post_message(Exported(await self.book.export(self.checklist)))

    @on(Exported)
    def show_export(self, message: Exported) -> None:
        self.status(Text(f"exported {self.checklist.name} as Markdown to {message.path}", style="bold"))

    def action_back(self) -> None:
        if self.query_one("#walk-note").display:
            self.close_note()
            self.status(Text("not confirmed", style="dim"))
        elif self.running is not None and not self.running.is_finished:
            self.notify("a run is under way: wait for its verdict (q quits and cancels it)")
        else:
            self.app.pop_screen()

    @on(Worker.StateChanged)
    def show_failure(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.query_one("#walk-bar").display = False
            error = event.worker.error
            what = FAILURES.get(event.worker.name, event.worker.name)
            self.status(Text(f"{what}: {error or type(error).__name__}", style="bold red"))

    def status(self, text: Text) -> None:
        self.query_one("#walk-status", Static).update(text)
