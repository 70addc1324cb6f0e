"""A stream service's figures over HTTP: Prometheus text at /metrics, JSON at /stats.

The stream process is one asyncio loop, so the server lives in that loop too: it reads the run's stats
between two trades, never from another thread while they change. The figures are read when asked for
(a Prometheus collector over the live stats), so nothing has to keep a second set of counters in step.
The JSON shapes are msgspec Structs, which the cockpit decodes with the same types.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from k2tui.ingest.producer import TradeProducer
from k2tui.ingest.runner import StreamRun
from k2tui.ingest.stats import StreamSnapshot
from k2tui.model.trade import TradeV2

READ_LIMIT_S = 5.0
"""A client that sends no complete request head in this long is dropped."""


class StreamStatus(msgspec.Struct, frozen=True):
    """One stream's figures (StreamSnapshot without the trade object)."""

    name: str
    source: str
    state: str
    connected_since: float | None
    messages: int
    trades: int
    duplicates: int
    parse_errors: int
    reconnects: int
    last_reconnect_reason: str
    last_error: str
    gaps: int
    missing_trades: int
    rate_1s: float
    rate_10s: float
    per_second: list[int]
    """Trades in each of the last 30 complete seconds, oldest first."""
    latency_p50_ms: float | None
    latency_p99_ms: float | None


class TapeTrade(msgspec.Struct, frozen=True):
    """A trade as the tape shows it; decimals as their exact text."""

    time: str
    """ISO-8601 UTC with microseconds: the exchange's trade time."""
    exchange: str
    symbol: str
    side: str
    price: str
    quantity: str


class ProducerStatus(msgspec.Struct, frozen=True):
    acked: int
    buffered: int
    overflowed: int
    abandoned: int
    send_failures: int
    kafka_up: bool
    registry_up: bool
    last_error: str


def delivery_problem(kafka_up: bool, registry_up: bool, last_error: str) -> str:
    """What keeps trades from Kafka in a few words, or "" when nothing does.

    Until the first attempt has failed the producer is only connecting: calling Kafka unavailable then
    would cry wolf on every start.
    """
    if kafka_up:
        return ""
    if not last_error:
        return "connecting to Kafka"
    return "Kafka unavailable" if registry_up else "Schema Registry unavailable"


class StatsPage(msgspec.Struct, frozen=True):
    """What GET /stats answers: every stream of the process, its newest trades first, and its producer."""

    streams: list[StreamStatus]
    trades: list[TapeTrade]
    producer: ProducerStatus | None


def stream_status(s: StreamSnapshot) -> StreamStatus:
    """The snapshot's figures under the same names, as plain values for the wire."""
    figures = {name: getattr(s, name) for name in StreamStatus.__struct_fields__}
    return StreamStatus(**figures | {"state": s.state.value, "per_second": list(s.per_second)})


def tape_trade(t: TradeV2) -> TapeTrade:
    time = datetime.fromtimestamp(t.timestamp / 1e6, UTC).isoformat(timespec="microseconds")
    return TapeTrade(
        time.replace("+00:00", "Z"), t.exchange.value, t.symbol, t.side.value, str(t.price), str(t.quantity)
    )


class StreamFigures:
    """The run and producer of this process, read on demand; a run not yet begun has no streams."""

    def __init__(self, producer: TradeProducer | None) -> None:
        self.producer = producer
        self.run: StreamRun | None = None

    def snapshots(self) -> list[StreamSnapshot]:
        return [] if self.run is None else [c.stats.snapshot() for c in self.run.clients]

    def page(self) -> StatsPage:
        recent = [] if self.run is None else list(self.run.recent)
        p = self.producer
        return StatsPage(
            streams=[stream_status(s) for s in self.snapshots()],
            trades=[tape_trade(t) for t in reversed(recent)],
            producer=None
            if p is None
            else ProducerStatus(
                p.stats.acked,
                p.buffered,
                p.stats.overflowed,
                p.stats.abandoned,
                p.stats.send_failures,
                p.stats.kafka_up,
                p.stats.registry_up,
                p.stats.last_error,
            ),
        )


class _StreamCollector(Collector):
    def __init__(self, figures: StreamFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        labels = ["exchange", "source"]
        counters = {
            "trades": ("Trades accepted from the exchange", lambda s: s.trades),
            "messages": ("WebSocket messages received", lambda s: s.messages),
            "reconnects": ("Reconnects of the WebSocket", lambda s: s.reconnects),
            "gaps": ("Gaps in exchange trade ids", lambda s: s.gaps),
            "parse_errors": ("Messages refused as malformed", lambda s: s.parse_errors),
            "duplicates": ("Trades seen again (replays) and dropped", lambda s: s.duplicates),
        }
        snapshots = self.figures.snapshots()
        for name, (text, value) in counters.items():
            family = CounterMetricFamily(f"k2_stream_{name}", text, labels=labels)
            for s in snapshots:
                family.add_metric([s.name, s.source], value(s))
            yield family
        streaming = GaugeMetricFamily("k2_stream_streaming", "1 while the stream is streaming", labels=labels)
        latency = GaugeMetricFamily(
            "k2_stream_receive_latency_seconds",
            "Receive time minus trade time over the latest trades",
            labels=[*labels, "quantile"],
        )
        for s in snapshots:
            streaming.add_metric([s.name, s.source], float(s.state.value == "streaming"))
            for quantile, ms in (("0.5", s.latency_p50_ms), ("0.99", s.latency_p99_ms)):
                if ms is not None:
                    latency.add_metric([s.name, s.source, quantile], ms / 1000)
        yield streaming
        yield latency
        producer = self.figures.producer
        if producer is not None:
            yield CounterMetricFamily(
                "k2_producer_acked", "Trades Kafka acknowledged", value=producer.stats.acked
            )
            yield CounterMetricFamily(
                "k2_producer_failed",
                "Trades Kafka will not get (dead-lettered: buffer full or abandoned)",
                value=producer.stats.overflowed + producer.stats.abandoned,
            )
            yield CounterMetricFamily(
                "k2_producer_send_failures", "Failed sends, retried", value=producer.stats.send_failures
            )
            yield GaugeMetricFamily(
                "k2_producer_buffered", "Trades waiting for Kafka", value=producer.buffered
            )


class StatusServer:
    """GET /metrics and GET /stats on an already bound socket, in the caller's event loop."""

    def __init__(self, figures: StreamFigures) -> None:
        self.figures = figures
        self.registry = CollectorRegistry()
        self.registry.register(_StreamCollector(figures))

    def respond(self, path: str) -> tuple[str, str, bytes]:
        """(status line, content type, body) for a GET of `path`."""
        route = path.partition("?")[0]
        if route == "/metrics":
            return "200 OK", "text/plain; version=0.0.4; charset=utf-8", generate_latest(self.registry)
        if route == "/stats":
            return "200 OK", "application/json", msgspec.json.encode(self.figures.page())
        return "404 Not Found", "text/plain", b"GET /metrics or /stats\n"

    async def serve(self, sock: socket.socket) -> asyncio.Server:
        return await asyncio.start_server(self._handle, sock=sock)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_LIMIT_S)
            method, _, rest = head.decode("latin-1").partition(" ")
            path = rest.partition(" ")[0]
            if method == "GET":
                status, kind, body = self.respond(path)
            else:
                status, kind, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
