"""Streams pane: per exchange its state, SIMULATED when the simulator feeds it, trades/s with a sparkline
of the last 30 s, reconnects, gaps, receive latency and the producer's figures; then the newest trades,
newest on top."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from k2tui.ingest.status import delivery_problem
from k2tui.tui.stream_feed import StreamsSnapshot, StreamView
from k2tui.tui.widgets.body import Column, Grid, Part
from k2tui.tui.widgets.pane import Pane
from k2tui.tui.widgets.tables import count

TAPE_ROWS = 8
SPARK = "▁▂▃▄▅▆▇█"
STATE_STYLES = {
    "streaming": "green",
    "connecting": "yellow",
    "subscribing": "yellow",
    "starting": "yellow",
    "reconnecting": "yellow",
    "failed": "bold red",
    "unreadable": "red",
    "stopped": "dim",
}
SIDE_STYLES = {"BUY": "green", "SELL": "red"}
KEYS = {"binance": "b", "kraken": "k"}


def sparkline(values: Sequence[int]) -> str:
    """One block character per value, scaled to the largest (all low when everything is 0)."""
    top = max(values, default=0)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in values)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


class StreamsPane(Pane):
    def __init__(self) -> None:
        super().__init__("Streams", id="streams")

    def render_snapshot(self, snapshot: StreamsSnapshot) -> None:
        parts: list[Part] = []
        for view in snapshot.streams:
            parts.extend(_stream_lines(view))
        parts.append(_tape(snapshot))
        self.show(*parts)


def _stream_lines(view: StreamView) -> list[Text]:
    head = Text.assemble((f"{view.exchange:<8}", "bold"), (view.state, STATE_STYLES.get(view.state, "")))
    if view.simulated:
        head.append(" ")
        head.append(" SIMULATED ", style="reverse")
    s = view.stream
    if view.problem:
        return [head, Text(f"  {view.problem}", style="red")]
    if s is None:
        if not view.running:
            head.append("  ")
            head.append(f"({KEYS.get(view.exchange, '?')} starts it)", style="dim")
        return [head]
    rate = Text.assemble(f"  {s.rate_1s:,.1f} trades/s ", (sparkline(s.per_second), "cyan"))
    figures = (
        f"  reconnects {s.reconnects} · gaps {s.gaps} · latency p50/p99 "
        f"{_ms(s.latency_p50_ms)}/{_ms(s.latency_p99_ms)} ms"
    )
    lines = [head, rate, Text(figures, style="dim" if not (s.reconnects or s.gaps) else "yellow")]
    p = view.producer
    if p is not None:
        problem = delivery_problem(p.kafka_up, p.registry_up, p.last_error)
        kafka = f" · {problem}" if problem else ""
        lines.append(
            Text(f"  Kafka acked {count(p.acked)} · buffered {count(p.buffered)}{kafka}", style="dim")
        )
    return lines


def _tape(snapshot: StreamsSnapshot) -> Part:
    if not snapshot.trades:
        return Text("no trades yet", style="dim")
    table = Grid(
        "time UTC", "exchange", "symbol", "side", Column("price", right=True), Column("quantity", right=True)
    )
    for t in snapshot.trades[:TAPE_ROWS]:
        table.add_row(
            t.time[11:23],
            t.exchange.lower(),
            t.symbol,
            Text(t.side, style=SIDE_STYLES.get(t.side, "")),
            t.price,
            t.quantity,
        )
    return table
