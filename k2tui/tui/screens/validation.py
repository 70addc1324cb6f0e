"""A validation run: its steps as they go, then every check with its figures, and the highlighted
check's detail and evidence. Closing it leaves the run going; `r` on the main screen brings it back."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static

from k2tui.tui.validation_run import RunState, StepState, ValidationRun
from k2tui.tui.widgets.key_bar import KeyBar
from k2tui.validate.check import CheckResult

STEP_MARKS = {
    StepState.PENDING: ("·", "dim"),
    StepState.RUNNING: ("▶", "bold yellow"),
    StepState.PASS: ("✔", "green"),
    StepState.WARN: ("!", "yellow"),
    StepState.FAIL: ("✘", "bold red"),
    StepState.SKIP: ("–", "dim"),
}
CHECK_STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
RUN_STYLES = {
    RunState.RUNNING: "yellow",
    RunState.CANCELLING: "yellow",
    RunState.FINISHED: "green",
    RunState.CANCELLED: "yellow",
    RunState.CRASHED: "bold red",
}
BAR_WIDTH = 20


class ValidationScreen(Screen[None]):
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "app.pop_screen", "Close (the run goes on)"),
        Binding("x", "app.cancel_validation", "Cancel the run"),
    ]

    def __init__(self, run: ValidationRun) -> None:
        super().__init__()
        self.run = run

    def compose(self) -> ComposeResult:
        with Vertical(id="validation"):
            yield Static(id="validation-head")
            yield Static(id="validation-steps", classes="pane")
            checks: DataTable[RenderableType] = DataTable(id="validation-checks", cursor_type="row")
            checks.border_title = "Checks"
            checks.add_columns("status", "check", "title", "measured")
            yield checks
            with VerticalScroll(id="validation-detail-box"):
                yield Static(id="validation-detail")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#validation-steps", Static).border_title = "Steps"
        self.query_one("#validation-detail-box").border_title = "Check"
        self.show()

    def show(self) -> None:
        """Draw the run as it stands (called on every progress event while the screen is up)."""
        run = self.run
        self.query_one("#validation-head", Static).update(_head(run))
        self.query_one("#validation-steps", Static).update(_steps(run))
        table: DataTable[RenderableType] = self.query_one("#validation-checks", DataTable)
        results = run.results
        if table.row_count > len(results):
            table.clear()
        for index in range(table.row_count, len(results)):
            table.add_row(*_row(results[index]), key=str(index))
        self._show_detail(table.cursor_row)

    @on(DataTable.RowHighlighted)
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.cursor_row)

    def _show_detail(self, row: int) -> None:
        results = self.run.results
        detail = self.query_one("#validation-detail", Static)
        if not results:
            detail.update(Text("the checks appear here as each step finishes", style="dim"))
            return
        detail.update(check_detail(results[min(max(row, 0), len(results) - 1)]))


def _head(run: ValidationRun) -> Text:
    total = len(run.steps)
    status = {
        RunState.RUNNING: f"running: {run.done_steps} of {total} steps done",
        RunState.CANCELLING: "cancelling: its clean-up steps still run",
    }.get(run.state, run.verdict())
    return Text.assemble((run.title or f"validate {run.name}", "bold"), "  ", (status, RUN_STYLES[run.state]))


def _steps(run: ValidationRun) -> Table:
    table = Table(box=None, show_header=False, expand=True, pad_edge=False)
    table.add_column("mark", width=1)
    table.add_column("step", ratio=3, no_wrap=True, overflow="ellipsis")
    table.add_column("progress", ratio=2, no_wrap=True, overflow="ellipsis")
    for line in run.steps:
        mark, style = STEP_MARKS[line.state]
        if line.state is StepState.RUNNING:
            bar = ProgressBar(total=1.0, completed=line.fraction or 0.0, width=BAR_WIDTH)
            progress: RenderableType = Table.grid(padding=(0, 1))
            progress.add_row(bar, Text(line.detail, style="dim"))
        elif line.seconds is not None:
            progress = Text(f"{line.state.value} in {line.seconds:.1f} s", style=style)
        else:
            progress = Text(line.state.value, style="dim")
        table.add_row(Text(mark, style=style), Text(line.title, style=style), progress)
    return table


def _row(result: CheckResult) -> tuple[RenderableType, ...]:
    measured = ", ".join(f"{key} {value}" for key, value in result.measured.items())
    return (
        Text(result.status.value.upper(), style=CHECK_STYLES.get(result.status.value, "")),
        result.id,
        result.title,
        Text(measured, style="dim"),
    )


def check_detail(result: CheckResult) -> Group:
    """A check's verdict, its figures and its evidence, as the detail pane shows them."""
    lines: list[RenderableType] = [
        Text.assemble(
            (result.status.value.upper(), CHECK_STYLES.get(result.status.value, "")),
            " ",
            (result.title, "bold"),
        ),
        Text(f"{result.id} · stage {result.stage.value}", style="dim"),
        Text(result.detail),
    ]
    if result.measured:
        figures = Table(box=None, show_header=False, pad_edge=False)
        figures.add_column("figure", style="dim")
        figures.add_column("value")
        for key, value in result.measured.items():
            figures.add_row(key, str(value))
        lines.append(figures)
    if result.evidence:
        lines.append(Text("evidence", style="bold"))
        lines.extend(Text(f"• {line}") for line in result.evidence)
    return Group(*lines)
