"""Faults injected by hand on the running pipeline (the cockpit's menu, the demo tour), and the proof
that the pipeline came back: recovery watched after the heal, then the fault's window counted.

The stack faults are the scenarios' own definitions (faults.FAULTS); malformed messages and a sequence
gap are knobs of the simulator service, reached through its control endpoint. The window of the proof
is the Kafka log between the ends read when the fault was injected and when it was healed: every
message id Kafka holds there must be in the lake exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from aiokafka.structs import TopicPartition
from pyiceberg.table import Table

from k2tui.consume.resilience import BreakerState
from k2tui.lake.catalog import open_trades_table
from k2tui.model.trade import TradeV2
from k2tui.stack.layout import HOST
from k2tui.stack.metrics import scrape
from k2tui.validate.check import CheckResult, all_hold
from k2tui.validate.consistency import consistency_checks
from k2tui.validate.env import ValidationEnv
from k2tui.validate.faults import FAULTS, Fault, nothing_to_heal
from k2tui.validate.offsets import log_ends
from k2tui.validate.stages import lake_ids, read_kafka, wait_written

SIMULATOR_TIMEOUT_S = 5.0
INJECTED_MESSAGES = 5
"""Malformed messages sent, and trade ids skipped, per injection."""
RECOVERY_LIMIT_S = 60.0
POLL_S = 0.5


class SimulatorUnavailableError(RuntimeError):
    """The simulator service does not answer; the message says where it was looked for."""


async def simulator_control(env: ValidationEnv, knob: str, **arguments: object) -> object:
    """Turn one knob of the simulator service (`POST /control/<knob>?...`); returns its result."""
    port = env.settings.streams.simulator_port
    url = f"http://{HOST}:{port}/control/{knob}"
    try:
        async with httpx.AsyncClient(timeout=SIMULATOR_TIMEOUT_S) as client:
            response = await client.post(url, params={k: str(v) for k, v in arguments.items()})
    except httpx.HTTPError as error:
        raise SimulatorUnavailableError(
            f"the simulator is not running (nothing answers at {HOST}:{port}): "
            "start a stream on the simulator first"
        ) from error
    body = response.json()
    if response.status_code != 200:
        raise RuntimeError(f"the simulator refused {knob}: {body.get('error', response.text)}")
    return body["result"]


async def _send_malformed(env: ValidationEnv) -> str:
    sent = await simulator_control(env, "inject_malformed", exchange="binance", count=INJECTED_MESSAGES)
    if not sent:
        return "the simulator has no Binance connection: no malformed message was sent"
    return f"{sent} malformed messages sent to the simulator's Binance connections"


async def _skip_trade_ids(env: ValidationEnv) -> str:
    await simulator_control(env, "skip_trade_ids", exchange="binance", count=INJECTED_MESSAGES)
    return f"the simulator skipped {INJECTED_MESSAGES} Binance trade ids per symbol"


MALFORMED = Fault(
    "malformed",
    "Malformed messages from the exchange",
    _send_malformed,
    nothing_to_heal,
    effect=f"The simulator sends {INJECTED_MESSAGES} malformed messages on each Binance connection: the "
    "stream must dead-letter them and carry on.",
    active="malformed messages sent",
    instant=True,
)
SEQUENCE_GAP = Fault(
    "sequence_gap",
    "Sequence gap in the exchange's trade ids",
    _skip_trade_ids,
    nothing_to_heal,
    effect=f"The simulator skips {INJECTED_MESSAGES} Binance trade ids per symbol: the consumer's sequence "
    "tracker must report the gap.",
    active="trade ids skipped",
    instant=True,
)

MENU: tuple[Fault, ...] = (
    FAULTS["broker_restart"],
    FAULTS["registry_unavailable"],
    FAULTS["object_store"],
    FAULTS["consumer_crash"],
    FAULTS["network_partition"],
    MALFORMED,
    SEQUENCE_GAP,
)
"""What the cockpit offers, in its order."""


@dataclass(frozen=True)
class Injected:
    """A fault that went in: what was done, and the log ends when it did (the window's start)."""

    fault: str
    message: str
    starts: Mapping[TopicPartition, int]


@dataclass(frozen=True)
class Recovery:
    """How the pipeline came back from a fault, and what the fault's window holds at each stage."""

    seconds: float | None
    """From the heal until the lake held all Kafka held then and every breaker was closed; None: not
    within the limit."""
    waiting_for: str
    """What was still not right at the deadline (empty when recovered)."""
    kafka: int
    iceberg: int
    missing: int
    duplicated: int
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.missing == 0 and self.duplicated == 0 and self.kafka == self.iceberg

    @property
    def ok(self) -> bool:
        return self.seconds is not None and self.exact

    def summary(self) -> str:
        """One line: 'recovered in 6.2 s; 1,234 in Kafka = 1,234 in Iceberg, 0 missing, 0 duplicated'."""
        came_back = (
            f"recovered in {self.seconds:.1f} s"
            if self.seconds is not None
            else f"not recovered: {self.waiting_for}"
        )
        sign = "=" if self.kafka == self.iceberg else "≠"
        counts = (
            f"{self.kafka:,} in Kafka {sign} {self.iceberg:,} in Iceberg, "
            f"{self.missing:,} missing, {self.duplicated:,} duplicated"
        )
        if self.kafka == 0:
            return f"{came_back}; no trade reached Kafka while the fault lasted (are the streams running?)"
        if self.exact:
            return f"{came_back}; {counts}"
        where = [check.detail for check in self.checks if not all_hold([check])]
        return f"{came_back}; " + ": ".join([counts, "; ".join(where)] if where else [counts])


async def inject(env: ValidationEnv, fault: Fault) -> Injected:
    starts = await log_ends(env.endpoints.kafka_bootstrap, env.topics)
    return Injected(fault.id, await fault.inject(env), starts)


async def recover(env: ValidationEnv, injected: Injected, limit: float = RECOVERY_LIMIT_S) -> Recovery:
    """After the heal: wait until the consumer caught up with what Kafka holds now and every circuit
    breaker is closed (at most `limit` seconds), then count the fault's window at each stage."""
    healed_at = time.monotonic()
    deadline = healed_at + limit
    table = await asyncio.to_thread(open_trades_table, env.layout)
    ends: dict[TopicPartition, int] | None = None
    waiting_for = "the broker's log ends could not be read"
    recovered: float | None = None
    problem = ""
    while time.monotonic() < deadline:
        try:
            if ends is None:
                ends = await log_ends(env.endpoints.kafka_bootstrap, env.topics)
            waiting_for = f"the lake is behind Kafka's log end ({sum(ends.values()):,} across partitions)"
            left = max(0.1, deadline - time.monotonic())
            await wait_written(
                table, env.settings.consumer.group, ends, left, bootstrap=env.endpoints.kafka_bootstrap
            )
            waiting_for = "a circuit breaker of the consumer is still open"
            if await _breakers_closed(env):
                recovered = time.monotonic() - healed_at
                break
        except TimeoutError as error:
            waiting_for, problem = str(error), ""
            break
        except Exception as error:  # a service still finding its feet after the heal: ask again
            problem = f" (last: {error.__class__.__name__}: {error})"
        await asyncio.sleep(POLL_S)
    unmet = "" if recovered is not None else waiting_for + problem
    return await _count_window(env, table, injected, ends or {}, recovered, unmet)


async def _breakers_closed(env: ValidationEnv) -> bool:
    page = await scrape(f"http://{HOST}:{env.settings.consumer.metrics_port}/metrics")
    return all(int(s.value) == BreakerState.CLOSED for s in page.values("k2_circuit_breaker_state"))


async def _count_window(
    env: ValidationEnv,
    table: Table,
    injected: Injected,
    ends: Mapping[TopicPartition, int],
    seconds: float | None,
    waiting_for: str,
) -> Recovery:
    messages = await read_kafka(
        env.endpoints.kafka_bootstrap, env.endpoints.registry_url, injected.starts, ends
    )
    trades = list({m.trade.message_id: m.trade for m in messages if m.trade is not None}.values())
    times = [t.timestamp for t in trades] or [0]
    in_lake = await asyncio.to_thread(
        lambda: lake_ids(table, [t.message_id for t in trades], between=(min(times), max(times) + 1))
    )
    return judge_window(injected.fault, trades, in_lake, seconds, waiting_for)


def judge_window(
    fault_id: str, trades: Sequence[TradeV2], in_lake: Counter[str], seconds: float | None, waiting_for: str
) -> Recovery:
    """The fault window's trades (distinct, from Kafka) against how often the lake holds each."""
    checks = consistency_checks(f"cockpit.{fault_id}", trades, in_lake)
    measured = {key: value for check in checks for key, value in check.measured.items()}
    return Recovery(
        seconds=seconds,
        waiting_for=waiting_for,
        kafka=len(trades),
        iceberg=sum(in_lake.values()),
        missing=int(measured.get("iceberg_missing_ids", 0)),
        duplicated=int(measured.get("iceberg_duplicated_ids", 0)),
        checks=checks,
    )
