"""The seed's quick streaming validation: connect, take N trades, and hold them to the v2 rules.

Per exchange: the connection opens, N trades arrive within the time allowed, every one is v2-compliant
(the figure is a percentage, and anything under 100 fails), the message rate and the time to the first
trade are measured, and refused messages are counted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from k2tui.config import Settings
from k2tui.ingest.runner import SourceUnreachableError, plan_sources, stream_trades
from k2tui.model.trade import TradeV2
from k2tui.model.validation import validate
from k2tui.validate.check import CheckResult, CheckStatus, verdict

FIRST_TRADE_LIMIT_S = 10.0


async def validate_streaming(
    settings: Settings, exchanges: Sequence[str], *, trades: int, source: str, limit_s: float
) -> list[CheckResult]:
    results: list[CheckResult] = []
    for exchange in exchanges:
        results.extend(await _validate_one(settings, exchange, trades=trades, source=source, limit_s=limit_s))
    return results


async def _validate_one(
    settings: Settings, exchange: str, *, trades: int, source: str, limit_s: float
) -> list[CheckResult]:
    prefix = f"streaming.{exchange}"
    try:
        plan = await plan_sources(settings, [exchange], source=source, fallback=False)
    except SourceUnreachableError as error:
        return [CheckResult(f"{prefix}.connection", f"{exchange}: connection", CheckStatus.FAIL, str(error))]
    received: list[TradeV2] = []
    began = time.monotonic()
    report = await stream_trades(
        settings, plan, producer=None, max_trades=trades, duration=limit_s, on_trades=received.extend
    )
    seconds = time.monotonic() - began
    [stream] = report.streams
    origin = plan.sources[exchange]
    violations = [(t.trade_id, v) for t in received for v in validate(t)]
    compliant = sum(1 for t in received if not validate(t))
    percent = 100.0 * compliant / len(received) if received else 0.0
    rate = stream.messages / seconds if seconds else 0.0
    connected = stream.connect_seconds is not None
    first = stream.first_trade_seconds
    return [
        CheckResult(
            f"{prefix}.connection",
            f"{exchange}: connection ({origin})",
            verdict(connected and not report.errors),
            "; ".join(report.errors)
            or (f"opened in {stream.connect_seconds * 1000:.0f} ms" if connected else stream.last_error),
            {"connect_ms": None if not connected else round(stream.connect_seconds * 1000, 1)},  # type: ignore[operator]
        ),
        CheckResult(
            f"{prefix}.trades",
            f"{exchange}: {trades} trades received",
            verdict(len(received) >= trades),
            f"{len(received)} of {trades} in {seconds:.1f} s (limit {limit_s:g} s)",
            {"trades": len(received), "seconds": round(seconds, 2)},
        ),
        CheckResult(
            f"{prefix}.v2_compliance",
            f"{exchange}: v2 compliance",
            verdict(bool(received) and compliant == len(received)),
            f"{percent:.1f}% of {len(received)} trades pass every v2 rule",
            {"percent": round(percent, 2)},
            [f"{trade_id}: {violation}" for trade_id, violation in violations[:10]],
        ),
        CheckResult(
            f"{prefix}.rate",
            f"{exchange}: message rate",
            verdict(rate > 0),
            f"{rate:.1f} messages/s",
            {"messages_per_s": round(rate, 2), "messages": stream.messages},
        ),
        CheckResult(
            f"{prefix}.first_trade",
            f"{exchange}: time to first trade",
            verdict(first is not None and first <= FIRST_TRADE_LIMIT_S),
            "no trade arrived" if first is None else f"{first:.2f} s (limit {FIRST_TRADE_LIMIT_S:g} s)",
            {"first_trade_s": None if first is None else round(first, 3)},
        ),
        CheckResult(
            f"{prefix}.refused",
            f"{exchange}: refused messages",
            verdict(stream.parse_errors == 0, otherwise=CheckStatus.WARN),
            f"{stream.parse_errors} refused (in the dead-letter queue)",
            {"refused": stream.parse_errors},
        ),
    ]
