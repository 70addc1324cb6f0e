"""Per-stream health the TUI and the CLI show: rates, latency, gaps, reconnects and their reasons."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from k2tui.model.trade import TradeV2

LATENCY_SAMPLES = 4096
REASONS_KEPT = 50
RATE_HISTORY_S = 30
"""Seconds of per-second trade counts kept for a sparkline (the Streams pane)."""


class StreamState(StrEnum):
    CONNECTING = "connecting"
    SUBSCRIBING = "subscribing"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    STOPPED = "stopped"


class RateMeter:
    """Events per second over the last seconds (1 s, 10 s, each of the last 30), from whole-second buckets."""

    def __init__(self, horizon: int = RATE_HISTORY_S) -> None:
        self._buckets: deque[list[int]] = deque(maxlen=horizon + 1)
        self.horizon = horizon

    def add(self, count: int, now: float) -> None:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += count
        else:
            self._buckets.append([second, count])

    def rate(self, seconds: int, now: float) -> float:
        """Mean rate over the last `seconds` complete seconds (the current partial second is left out)."""
        current = int(now)
        total = sum(c for s, c in self._buckets if current - seconds <= s < current)
        return total / seconds

    def per_second(self, seconds: int, now: float) -> list[int]:
        """The count of each of the last `seconds` complete seconds, oldest first (0 for a quiet one)."""
        current = int(now)
        counts = dict(self._buckets)
        return [counts.get(second, 0) for second in range(current - seconds, current)]


@dataclass
class Gap:
    symbol: str
    after: int
    resumed_at: int
    at: float

    @property
    def missing(self) -> int:
        return self.resumed_at - self.after - 1


@dataclass
class StreamStats:
    name: str
    source: str
    state: StreamState = StreamState.CONNECTING
    connected_since: float | None = None
    messages: int = 0
    trades: int = 0
    duplicates: int = 0
    parse_errors: int = 0
    reconnects: int = 0
    reconnect_reasons: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=REASONS_KEPT))
    last_trade: TradeV2 | None = None
    last_error: str = ""
    gaps: deque[Gap] = field(default_factory=lambda: deque(maxlen=REASONS_KEPT))
    gap_count: int = 0
    missing_trades: int = 0
    connect_seconds: float | None = None
    first_trade_seconds: float | None = None
    rate_meter: RateMeter = field(default_factory=RateMeter)
    latencies_us: deque[int] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    last_sequence: dict[str, int] = field(default_factory=dict)

    def accept(self, trade: TradeV2, now: float, *, live: bool = True) -> bool:
        """Count a trade; False for a trade already seen (a replay), which must not go further.

        Receive latency is kept for `live` trades only: history replayed on subscribe is old by design.
        """
        sequence = trade.sequence_number
        if sequence is not None:
            last = self.last_sequence.get(trade.symbol)
            if last is not None:
                if sequence <= last:
                    self.duplicates += 1
                    return False
                if sequence > last + 1:
                    gap = Gap(trade.symbol, last, sequence, now)
                    self.gaps.append(gap)
                    self.gap_count += 1
                    self.missing_trades += gap.missing
            self.last_sequence[trade.symbol] = sequence
        self.trades += 1
        self.last_trade = trade
        if live:
            self.latencies_us.append(trade.ingestion_timestamp - trade.timestamp)
        return True

    def reconnected(self, reason: str, now: float) -> None:
        self.reconnects += 1
        self.reconnect_reasons.append((now, reason))

    def snapshot(self, now: float | None = None) -> StreamSnapshot:
        now = time.time() if now is None else now
        p50, p99 = percentile(self.latencies_us, 0.50), percentile(self.latencies_us, 0.99)
        return StreamSnapshot(
            name=self.name,
            source=self.source,
            state=self.state,
            connected_since=self.connected_since,
            messages=self.messages,
            trades=self.trades,
            duplicates=self.duplicates,
            parse_errors=self.parse_errors,
            reconnects=self.reconnects,
            last_reconnect_reason=self.reconnect_reasons[-1][1] if self.reconnect_reasons else "",
            last_trade=self.last_trade,
            last_error=self.last_error,
            gaps=self.gap_count,
            missing_trades=self.missing_trades,
            rate_1s=self.rate_meter.rate(1, now),
            rate_10s=self.rate_meter.rate(10, now),
            per_second=tuple(self.rate_meter.per_second(RATE_HISTORY_S, now)),
            latency_p50_ms=None if p50 is None else p50 / 1000,
            latency_p99_ms=None if p99 is None else p99 / 1000,
            connect_seconds=self.connect_seconds,
            first_trade_seconds=self.first_trade_seconds,
        )


def percentile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank `q` quantile (0.99 for p99) of `values`, or None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return float(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])


@dataclass(frozen=True)
class StreamSnapshot:
    """A consistent copy of a stream's figures at one moment, safe to hand to another thread."""

    name: str
    source: str
    state: StreamState
    connected_since: float | None
    messages: int
    trades: int
    duplicates: int
    parse_errors: int
    reconnects: int
    last_reconnect_reason: str
    last_trade: TradeV2 | None
    last_error: str
    gaps: int
    missing_trades: int
    rate_1s: float
    rate_10s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    connect_seconds: float | None
    first_trade_seconds: float | None
    per_second: tuple[int, ...] = ()
    """Trades in each of the last RATE_HISTORY_S complete seconds, oldest first."""
