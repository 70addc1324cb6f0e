"""Consumer pane: the consumer service's own figures, read from its /metrics page."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from k2tui.tui.data import ConsumerSnapshot
from k2tui.tui.widgets.pane import Pane
from k2tui.tui.widgets.tables import count, grid_table

BREAKER_STYLES = {"closed": "green", "open": "bold red", "half-open": "yellow"}


class ConsumerPane(Pane):
    def __init__(self) -> None:
        super().__init__("Consumer", id="consumer")

    def render_snapshot(self, snapshot: ConsumerSnapshot) -> None:
        table = grid_table("figure", "value")
        table.columns[1].justify = "right"
        p99 = "—" if snapshot.commit_p99_s is None else f"{snapshot.commit_p99_s * 1000:,.0f} ms"
        table.add_row("consumed", count(snapshot.consumed))
        table.add_row("written", count(snapshot.written))
        table.add_row("commit p99 since start", p99)
        table.add_row("DLQ", count(snapshot.dlq_count))
        table.add_row("sequence gaps", count(snapshot.sequence_gaps))
        for dependency, state in sorted(snapshot.breakers.items()):
            table.add_row(f"breaker {dependency}", Text(state, style=BREAKER_STYLES.get(state, "")))
        self.show(Group(Text(f"from {snapshot.url}", style="dim"), table))
