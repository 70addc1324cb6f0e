"""Consumer pane: the consumer's own figures, from Prometheus or its /metrics page (it says which)."""

from __future__ import annotations

from rich.text import Text

from k2tui.tui.data import ConsumerSnapshot
from k2tui.tui.widgets.body import Column, Grid
from k2tui.tui.widgets.pane import Pane
from k2tui.tui.widgets.tables import count

BREAKER_STYLES = {"closed": "green", "open": "bold red", "half-open": "yellow"}


def _rate(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:,.1f} {unit}"


class ConsumerPane(Pane):
    def __init__(self) -> None:
        super().__init__("Consumer", id="consumer")

    def render_snapshot(self, snapshot: ConsumerSnapshot) -> None:
        # A long list of gaps folds; the labels stay whole.
        table = Grid("figure", Column("value", wrap=True), header=False)
        p99 = "—" if snapshot.commit_p99_s is None else f"{snapshot.commit_p99_s * 1000:,.0f} ms"
        table.add_row("consumed / written", f"{count(snapshot.consumed)} / {count(snapshot.written)}")
        table.add_row("throughput", _rate(snapshot.throughput, "rec/s"))
        table.add_row("mean batch", _rate(snapshot.mean_batch, "rec"))
        table.add_row("commit p99", p99)
        table.add_row("DLQ", count(snapshot.dlq_count))
        for dependency, state in sorted(snapshot.breakers.items()):
            table.add_row(f"breaker {dependency}", Text(state, style=BREAKER_STYLES.get(state, "")))
        gaps = ", ".join(f"{key} {count(n)}" for key, n in sorted(snapshot.gaps_by_symbol.items()) if n)
        table.add_row("sequence gaps", f"{count(snapshot.sequence_gaps)}" + (f" ({gaps})" if gaps else ""))
        self.show(Text(f"from {snapshot.source}, rates over {snapshot.window}", style="dim"), table)
