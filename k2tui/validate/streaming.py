"""The seed's quick streaming validation: connect, take N trades, and hold them to the v2 rules.

Per exchange: the connection opens, N trades arrive within the time allowed, every one is v2-compliant
(the figure is a percentage, and anything under 100 fails), the message rate and the time to the first
trade are measured, and refused messages are counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

from k2tui.config import Settings
from k2tui.ingest.runner import SourceUnreachableError, plan_sources, stream_trades
from k2tui.ingest.stats import StreamSnapshot
from k2tui.model.trade import TradeV2
from k2tui.model.validation import validate
from k2tui.validate.check import CheckResult, CheckStatus, Stage, make_check, verdict
from k2tui.validate.env import ValidationEnv
from k2tui.validate.procedure import Procedure, Step, StepContext

_result = partial(make_check, Stage.STREAM)

FIRST_TRADE_LIMIT_S = 10.0
EXCHANGES = ("binance", "kraken")


@dataclass(frozen=True)
class StreamingOptions:
    exchanges: tuple[str, ...] = EXCHANGES
    trades: int = 10
    source: str = "auto"
    """live, sim, or auto: live where the endpoint answers, else the simulator (and a warning)."""
    time_limit: float = 30.0
    """Seconds allowed per exchange."""


def streaming_procedure(env: ValidationEnv, options: StreamingOptions) -> Procedure:
    def step(exchange: str) -> Step:
        async def body(context: StepContext) -> list[CheckResult]:
            context.progress(f"connecting to {exchange}")
            return await _validate_one(env.settings, exchange, options)

        return Step(exchange, f"{exchange}: {options.trades} trades", body, stage=Stage.STREAM)

    return Procedure(
        "streaming",
        "Streaming: connection, trades and v2 compliance per exchange",
        tuple(step(exchange) for exchange in options.exchanges),
    )


async def _validate_one(settings: Settings, exchange: str, options: StreamingOptions) -> list[CheckResult]:
    prefix = f"streaming.{exchange}"
    trades, limit_s = options.trades, options.time_limit
    try:
        plan = await plan_sources(
            settings,
            [exchange],
            source="live" if options.source == "auto" else options.source,
            fallback=options.source == "auto",
        )
    except SourceUnreachableError as error:
        return [_result(f"{prefix}.connection", f"{exchange}: connection", CheckStatus.FAIL, str(error))]
    received: list[TradeV2] = []
    began = time.monotonic()
    report = await stream_trades(
        settings, plan, producer=None, max_trades=trades, duration=limit_s, on_trades=received.extend
    )
    [stream] = report.streams
    return judge_stream(
        StreamRunFacts(
            exchange=exchange,
            origin=plan.sources[exchange],
            wanted=trades,
            limit_s=limit_s,
            seconds=time.monotonic() - began,
            received=received,
            stream=stream,
            errors=report.errors,
            notes=plan.notes,
        )
    )


@dataclass(frozen=True)
class StreamRunFacts:
    """What one exchange's quick validation observed."""

    exchange: str
    origin: str
    wanted: int
    limit_s: float
    seconds: float
    received: list[TradeV2]
    stream: StreamSnapshot
    errors: list[str]
    notes: list[str]


def judge_stream(facts: StreamRunFacts) -> list[CheckResult]:
    prefix, exchange, stream, received = (
        f"streaming.{facts.exchange}",
        facts.exchange,
        facts.stream,
        facts.received,
    )
    violations = [(t.trade_id, v) for t in received for v in validate(t)]
    compliant = sum(1 for t in received if not validate(t))
    percent = 100.0 * compliant / len(received) if received else 0.0
    rate = stream.messages / facts.seconds if facts.seconds else 0.0
    connect_s = stream.connect_seconds
    first = stream.first_trade_seconds
    opened = (
        "; ".join(facts.errors)
        or (f"opened in {connect_s * 1000:.0f} ms" if connect_s is not None else stream.last_error)
        or "did not open"
    )
    connection = verdict(connect_s is not None and not facts.errors)
    if connection is CheckStatus.PASS and facts.notes:
        connection, opened = CheckStatus.WARN, f"{opened}; {'; '.join(facts.notes)}"
    return [
        _result(
            f"{prefix}.connection",
            f"{exchange}: connection ({facts.origin})",
            connection,
            opened,
            {"connect_ms": None if connect_s is None else round(connect_s * 1000, 1)},
        ),
        _result(
            f"{prefix}.trades",
            f"{exchange}: {facts.wanted} trades received",
            verdict(len(received) >= facts.wanted),
            f"{len(received)} of {facts.wanted} in {facts.seconds:.1f} s (limit {facts.limit_s:g} s)",
            {"trades": len(received), "seconds": round(facts.seconds, 2)},
        ),
        _result(
            f"{prefix}.v2_compliance",
            f"{exchange}: v2 compliance",
            verdict(bool(received) and compliant == len(received)),
            f"{percent:.1f}% of {len(received)} trades pass every v2 rule",
            {"percent": round(percent, 2)},
            [f"{trade_id}: {violation}" for trade_id, violation in violations[:10]],
        ),
        _result(
            f"{prefix}.rate",
            f"{exchange}: message rate",
            verdict(rate > 0),
            f"{rate:.1f} messages/s",
            {"messages_per_s": round(rate, 2), "messages": stream.messages},
        ),
        _result(
            f"{prefix}.first_trade",
            f"{exchange}: time to first trade",
            verdict(first is not None and first <= FIRST_TRADE_LIMIT_S),
            "no trade arrived" if first is None else f"{first:.2f} s (limit {FIRST_TRADE_LIMIT_S:g} s)",
            {"first_trade_s": None if first is None else round(first, 3)},
        ),
        _result(
            f"{prefix}.refused",
            f"{exchange}: refused messages",
            verdict(stream.parse_errors == 0, otherwise=CheckStatus.WARN),
            f"{stream.parse_errors} refused (in the dead-letter queue)",
            {"refused": stream.parse_errors},
        ),
    ]
