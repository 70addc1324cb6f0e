"""Timestamps measured, not assumed: their form in the API, their plausibility, and order where promised.

The v2 record carries two times in integer microseconds UTC: the exchange's trade time and when the
pipeline received the trade. The API shows each as ISO-8601 UTC text with microseconds and also as the
integer, and the two must be the same instant. A trade time later than now, or a receipt before the
trade, is a clock or unit error somewhere upstream. Order is promised in two places: the API's
``order=desc`` by trade time, and within a Kafka partition each symbol's exchange sequence rises with the
offset (the producer keys by symbol and resends a failed batch in its order).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from k2tui.ingest.stats import percentile
from k2tui.lake.values import micros_of
from k2tui.model.validation import DEFAULT_MAX_CLOCK_SKEW_US
from k2tui.validate.check import CheckResult, Stage, verdict
from k2tui.validate.stages import KafkaMessage

ISO_UTC_MICROS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
FUTURE_TOLERANCE_US = 2_000_000
"""How far ahead of this host's clock a trade time may be (exchange clocks drift a little)."""
RECEIPT_BEFORE_TRADE_US = 1_000_000
"""How far before the trade time the pipeline may have stamped its receipt (the same drift)."""
MAX_RECEIPT_DELAY_US = DEFAULT_MAX_CLOCK_SKEW_US
"""How long after the trade time its receipt may be, as the v2 rules allow: a Kraken v2 snapshot replays
the last 50 trades on subscribing, which may be a minute old; much more is a stale replay or a unit error."""
SHOWN = 10


def api_timestamp_format(prefix: str, items: Sequence[Mapping[str, Any]]) -> CheckResult:
    """Each API timestamp is ISO-8601 UTC with microseconds and the same instant as its ``_us`` integer."""
    bad = []
    for item in items:
        for name in ("timestamp", "ingestion_timestamp"):
            problem = _format_problem(item.get(name), item.get(f"{name}_us"))
            if problem:
                bad.append(f"{item.get('message_id')} {name}: {problem}")
    checked = 2 * len(items)
    return CheckResult(
        f"{prefix}.timestamp_format",
        "API: ISO-8601 UTC µs, equal to the integer",
        verdict(bool(items) and not bad),
        (
            f"{checked} timestamps in the form 2026-01-13T15:30:45.123456Z, each equal to its _us"
            if not bad
            else f"{len(bad)} of {checked} timestamps wrong, first {bad[0]}"
        )
        if items
        else "no API items to check",
        {"timestamps": checked, "wrong": len(bad)},
        bad[:SHOWN],
        stage=Stage.API,
    )


def _format_problem(text: Any, micros: Any) -> str | None:
    if not isinstance(text, str) or not ISO_UTC_MICROS.fullmatch(text):
        return f"{text!r} is not ISO-8601 UTC with microseconds (YYYY-MM-DDTHH:MM:SS.ffffffZ)"
    if not isinstance(micros, int):
        return f"the integer microseconds are missing (got {micros!r})"
    shown = micros_of(datetime.fromisoformat(text))
    if shown != micros:
        return f"{text} is {shown} µs but the integer says {micros} ({shown - micros:+d} µs)"
    return None


def trade_times(
    prefix: str,
    messages: Sequence[KafkaMessage],
    now_us: int,
    *,
    future_tolerance_us: int = FUTURE_TOLERANCE_US,
    before_trade_us: int = RECEIPT_BEFORE_TRADE_US,
    max_delay_us: int = MAX_RECEIPT_DELAY_US,
) -> list[CheckResult]:
    """No trade time ahead of `now_us`; each receipt after its trade time, within the tolerances."""
    trades = [m.trade for m in messages if m.trade is not None]
    future = [t for t in trades if t.timestamp > now_us + future_tolerance_us]
    delays = [t.ingestion_timestamp - t.timestamp for t in trades]
    early = [t for t in trades if t.ingestion_timestamp < t.timestamp - before_trade_us]
    late = [t for t in trades if t.ingestion_timestamp > t.timestamp + max_delay_us]
    ahead_ms = max((t.timestamp - now_us for t in trades), default=0) / 1000
    future_detail = (
        f"{len(future)} of {len(trades)} trade times are in the future, up to {ahead_ms / 1000:.1f} s ahead "
        f"(tolerance {future_tolerance_us / 1e6:g} s), first {future[0].trade_id} at {future[0].timestamp} µs"
        if future
        else f"none of {len(trades)} trade times is ahead of now by more than {future_tolerance_us / 1e6:g} s"
    )
    skewed = early + late
    p50, p99 = _ms(percentile(delays, 0.5)), _ms(percentile(delays, 0.99))
    first = skewed[0] if skewed else None
    skew_detail = (
        f"{len(early)} received before their trade time and {len(late)} more than "
        f"{max_delay_us / 1e6:g} s after it; first {first.trade_id}: received "
        f"{(first.ingestion_timestamp - first.timestamp) / 1e6:+.3f} s after the trade"
        if first is not None
        else f"receipt − trade time: p50 {p50} ms, p99 {p99} ms, "
        f"within −{before_trade_us / 1e6:g} s … +{max_delay_us / 1e6:g} s"
    )
    return [
        CheckResult(
            f"{prefix}.future_trades",
            "No trade time in the future",
            verdict(bool(trades) and not future),
            future_detail if trades else "no trades to check",
            {"trades": len(trades), "future": len(future), "max_ahead_ms": round(ahead_ms, 1)},
            [
                f"{t.trade_id} {t.symbol}: {t.timestamp} µs, {(t.timestamp - now_us) / 1e6:+.3f} s"
                for t in future[:SHOWN]
            ],
            stage=Stage.KAFKA,
        ),
        CheckResult(
            f"{prefix}.ingestion_skew",
            "Received after the trade, within the skew",
            verdict(bool(trades) and not skewed),
            skew_detail if trades else "no trades to check",
            {
                "early": len(early),
                "late": len(late),
                "delay_p50_ms": p50,
                "delay_p99_ms": p99,
                "delay_max_ms": _ms(max(delays, default=None)),
            },
            [
                f"{t.trade_id} {t.symbol}: trade {t.timestamp}, received {t.ingestion_timestamp} "
                f"({(t.ingestion_timestamp - t.timestamp) / 1e6:+.3f} s)"
                for t in skewed[:SHOWN]
            ],
            stage=Stage.KAFKA,
        ),
    ]


def _ms(micros: float | None) -> float | None:
    return None if micros is None else round(micros / 1000, 2)


def api_order(prefix: str, items: Sequence[Mapping[str, Any]]) -> CheckResult:
    """``order=desc`` holds: each item's trade time is at or before the one listed before it."""
    times = [item.get("timestamp_us") for item in items]
    broken = [
        f"item {i}: {items[i].get('message_id')} at {times[i]} after {times[i - 1]}"
        for i in range(1, len(times))
        if not (isinstance(times[i], int) and isinstance(times[i - 1], int) and times[i] <= times[i - 1])
    ]
    return CheckResult(
        f"{prefix}.api_order",
        "API: latest first, as asked",
        verdict(bool(items) and not broken),
        (
            f"{len(items)} items in descending trade time"
            if not broken
            else f"{len(broken)} out of order, first {broken[0]}"
        )
        if items
        else "no API items to check",
        {"items": len(items), "out_of_order": len(broken)},
        broken[:SHOWN],
        stage=Stage.API,
    )


def kafka_sequence_order(prefix: str, messages: Sequence[KafkaMessage]) -> CheckResult:
    """In each partition, each symbol's exchange sequence number rises with the offset.

    A resent batch repeats message ids already seen; only each id's first copy counts.
    """
    last: dict[tuple[str, int, str, str], tuple[int, int]] = {}
    seen: set[str] = set()
    broken = []
    checked = 0
    for m in sorted(messages, key=lambda m: (m.topic, m.partition, m.offset)):
        trade = m.trade
        if trade is None or trade.sequence_number is None or trade.message_id in seen:
            continue
        seen.add(trade.message_id)
        checked += 1
        key = (m.topic, m.partition, trade.exchange.value, trade.symbol)
        previous = last.get(key)
        if previous is not None and trade.sequence_number <= previous[1]:
            broken.append(
                f"{m.position} {trade.symbol}: sequence {trade.sequence_number} after "
                f"{previous[1]} at offset {previous[0]}"
            )
        last[key] = (m.offset, trade.sequence_number)
    return CheckResult(
        f"{prefix}.kafka_order",
        "Kafka: sequences rise with the offset",
        verdict(checked > 0 and not broken),
        (
            f"{checked} sequenced trades in {len(last)} symbol series, each rising"
            if not broken
            else f"{len(broken)} out of order, first {broken[0]}"
        )
        if checked
        else "no sequenced trades to check",
        {"checked": checked, "out_of_order": len(broken)},
        broken[:SHOWN],
        stage=Stage.KAFKA,
    )
