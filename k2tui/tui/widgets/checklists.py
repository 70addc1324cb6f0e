"""Checklists pane: per checklist, how many items are done, failed and pending, with a small bar."""

from __future__ import annotations

from rich.text import Text

from k2tui.tui.checklist_book import ChecklistsSnapshot, ChecklistTally
from k2tui.tui.widgets.body import Column, Grid
from k2tui.tui.widgets.pane import Pane

BAR_WIDTH = 10


def bar(tally: ChecklistTally, width: int = BAR_WIDTH) -> Text:
    """Done cells green, failed red, pending dim: the proportions at a glance (a failure always shows)."""
    if not tally.total:
        return Text("·" * width, style="dim")
    failed = max(round(width * tally.failed / tally.total), 1 if tally.failed else 0)
    done = min(round(width * tally.done / tally.total), width - failed)
    return Text.assemble(("█" * done, "green"), ("█" * failed, "red"), ("░" * (width - done - failed), "dim"))


class ChecklistsPane(Pane):
    def __init__(self) -> None:
        super().__init__("Checklists", id="checklists")

    def render_snapshot(self, snapshot: ChecklistsSnapshot) -> None:
        figures = (Column(name, right=True) for name in ("done", "failed", "pending"))
        table = Grid("checklist", "progress", *figures)
        for tally in snapshot.tallies:
            table.add_row(
                tally.name,
                bar(tally),
                Text(f"{tally.done}/{tally.total}", style="green" if tally.done == tally.total else ""),
                Text(str(tally.failed), style="bold red" if tally.failed else "dim"),
                Text(str(tally.pending), style="" if tally.pending else "dim"),
            )
        header = Text(f"environment {snapshot.environment} · c walks one", style="dim")
        self.show(header, table)
