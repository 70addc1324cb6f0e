"""DLQ pane: the dead-letter entries grouped by reason."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from k2tui.tui.data import DlqSnapshot
from k2tui.tui.widgets.pane import Pane
from k2tui.tui.widgets.tables import grid_table


class DlqPane(Pane):
    def __init__(self) -> None:
        super().__init__("DLQ", id="dlq")

    def render_snapshot(self, snapshot: DlqSnapshot) -> None:
        if not snapshot.by_reason:
            self.show(Text("no dead letters", style="green"))
            return
        table = grid_table("reason", "count")
        table.columns[0].no_wrap = False
        table.columns[1].justify = "right"
        for reason, n in snapshot.by_reason:
            table.add_row(reason, f"{n:,}")
        self.show(Group(Text(f"{snapshot.total:,} entries", style="bold"), table))
