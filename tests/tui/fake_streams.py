"""Deterministic stream services for the cockpit's tests and pictures: Binance streaming from the
simulator, Kraken stopped, eight trades on the tape; and a switchboard that records the keys' calls."""

from __future__ import annotations

from dataclasses import dataclass, field

from k2tui.ingest.runner import SIMULATED
from k2tui.ingest.status import ProducerStatus, StreamStatus, TapeTrade
from k2tui.tui.stream_feed import StreamsSnapshot, StreamView

TRADES = [
    TapeTrade(f"2026-01-13T15:30:4{4 - n // 4}.{900 - n * 97:03d}123Z", "BINANCE", symbol, side, price, qty)
    for n, (symbol, side, price, qty) in enumerate(
        [
            ("BTCUSDT", "BUY", "86412.35", "0.01000000"),
            ("ETHUSDT", "SELL", "2842.68", "0.02209000"),
            ("BTCUSDT", "SELL", "86412.10", "0.00310000"),
            ("BTCUSDT", "BUY", "86412.50", "0.12000000"),
            ("ETHUSDT", "BUY", "2842.80", "0.06061000"),
            ("ETHUSDT", "SELL", "2842.64", "1.30590000"),
            ("BTCUSDT", "BUY", "86411.98", "0.00042000"),
            ("ETHUSDT", "BUY", "2842.82", "0.01895000"),
        ]
    )
]
"""Newest first, as /stats answers."""


PER_SECOND = [
    9,
    11,
    10,
    14,
    22,
    31,
    18,
    12,
    9,
    8,
    10,
    11,
    13,
    9,
    7,
    10,
    12,
    16,
    25,
    19,
    12,
    10,
    9,
    11,
    10,
    12,
    14,
    11,
    9,
    11,
]
"""Trades in each of the last 30 s: steady near 10/s with two bursts."""


def binance_stream() -> StreamStatus:
    return StreamStatus(
        name="binance",
        source=SIMULATED,
        state="streaming",
        connected_since=1_768_318_000.0,
        messages=12_410,
        trades=12_400,
        duplicates=0,
        parse_errors=3,
        reconnects=1,
        last_reconnect_reason="silence for 30 s",
        last_error="",
        gaps=2,
        missing_trades=5,
        rate_1s=11.0,
        rate_10s=11.3,
        per_second=PER_SECOND,
        latency_p50_ms=3.6,
        latency_p99_ms=12.4,
    )


PRODUCER = ProducerStatus(12_380, 20, 0, 0, 0, kafka_up=True, registry_up=True, last_error="")


def streams_snapshot() -> StreamsSnapshot:
    return StreamsSnapshot(
        [
            StreamView("binance", binance_stream(), PRODUCER, running=True),
            StreamView("kraken"),
        ],
        TRADES,
    )


@dataclass
class FakeSwitchboard:
    """Answers at once; `calls` records (verb, exchange[, source]); an exchange in `failing` raises."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    failing: dict[str, Exception] = field(default_factory=dict)

    def _call(self, *call: str) -> None:
        self.calls.append(call)
        if call[1] in self.failing:
            raise self.failing[call[1]]

    async def start(self, exchange: str) -> str:
        self._call("start", exchange)
        return f"{exchange}: started (simulator)"

    async def stop(self, exchange: str) -> str:
        self._call("stop", exchange)
        return f"{exchange}: stopped"

    async def set_source(self, exchange: str, source: str) -> str:
        self._call("set_source", exchange, source)
        return f"{exchange}: restarted with source {source} ({source})"
