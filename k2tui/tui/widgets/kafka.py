"""Kafka pane: per topic and partition, log end, the group's committed offset, lag and its trend, and
the produce and consume rates."""

from __future__ import annotations

from rich.text import Text

from k2tui.tui.data import KafkaSnapshot, LagTrends
from k2tui.tui.widgets.body import Grid
from k2tui.tui.widgets.pane import Pane
from k2tui.tui.widgets.tables import count

TOPIC_PREFIX = "market.crypto.trades."
"""Every topic of the pipeline starts so; the pane shows the rest."""
TREND_STYLES = {"draining": "green", "growing": "red", "stalled": "yellow"}


class KafkaPane(Pane):
    def __init__(self) -> None:
        super().__init__("Kafka", id="kafka")

    def render_snapshot(self, snapshot: KafkaSnapshot, trends: LagTrends) -> None:
        table = Grid("partition", "log end", "commit", "lag", "trend", "in/out")
        for p in snapshot.partitions:
            trend = trends.trend(p.topic, p.partition)
            rates = trends.rates(p.topic, p.partition)
            table.add_row(
                f"{p.topic.removeprefix(TOPIC_PREFIX)}/{p.partition}",
                count(p.log_end),
                count(p.committed),
                count(p.lag),
                Text(trend, style=TREND_STYLES.get(trend, "dim")),
                "—" if rates is None else f"{count(rates[0])}/{count(rates[1])}",
            )
        header = Text(f"group {snapshot.group} · in/out: produced/consumed a second", style="dim")
        self.show(header, table if snapshot.partitions else Text("no topics yet"))
