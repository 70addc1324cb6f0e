"""The seed's complete pipeline validation: exchange streams → Kafka → consumer → Iceberg → API, checked.

Trades stream for a while through the real producer into the pipeline's topics; the log ends before and
after bound the window, and Kafka's window defines what every later stage must hold: each message id
once in the lake and once in the API, the same values, v2-compliant in each stage's own form, with
plausible timestamps in the promised order. A sequence gap is injected through the simulator and the
pipeline must see it. Then malformed exchange messages and an undecodable Kafka payload must land in the
dead-letter queue, as they arrived and with a reason, while the good trades still arrive exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyarrow as pa
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pyiceberg.table import Table

from k2tui.consume.consumer import IcebergConsumer
from k2tui.ingest.dlq import DeadLetter, DeadLetterQueue, collect_dead_letters
from k2tui.ingest.producer import ensure_topics, subject_for
from k2tui.ingest.runner import (
    SIMULATED,
    StreamPlan,
    StreamReport,
    StreamRun,
    plan_sources,
    producer_for,
    stream_trades,
)
from k2tui.ingest.simulator.server import fixtures_dir, load_malformed
from k2tui.ingest.stats import percentile
from k2tui.ingest.topics import TOPICS
from k2tui.lake.catalog import ensure_trades_table, open_catalog, open_trades_table
from k2tui.model.schema import trade_v2_schema_text
from k2tui.model.trade import Exchange, TradeV2
from k2tui.stack.metrics import MetricsUnavailableError, scrape
from k2tui.stack.registry.client import RegistryClient
from k2tui.stack.supervisor import ServiceState
from k2tui.validate.check import CheckResult, CheckStatus, Stage, verdict
from k2tui.validate.compliance import (
    api_compliance,
    api_datum,
    iceberg_rows_compliance,
    iceberg_table_schema,
    kafka_compliance,
    lake_datum,
    same_values,
)
from k2tui.validate.consistency import consistency_checks
from k2tui.validate.env import ValidationEnv, services_ready
from k2tui.validate.faults import judge_ingest
from k2tui.validate.offsets import log_ends
from k2tui.validate.procedure import Procedure, Step, StepContext
from k2tui.validate.quiet import QuietStreams
from k2tui.validate.stages import (
    ApiError,
    KafkaMessage,
    api_trades,
    commit_times,
    lake_ids,
    lake_rows,
    read_kafka,
    wait_written,
)
from k2tui.validate.timestamps import api_order, api_timestamp_format, kafka_sequence_order, trade_times
from k2tui.validate.traffic import dead_lettered_trades

PREFIX = "pipeline"
SERVICES = ("broker", "registry", "object-store", "catalog", "api")
PRODUCER_DLQ = "pipeline-producer"
CONSUMER_DLQ = "consumer"
UNDECODABLE = b"k2tui pipeline validation: these bytes are not a Confluent Avro message"
"""Produced into the window on purpose: its first byte is not the wire format's magic byte 0."""
MALFORMED_PER_EXCHANGE = 2
GAP_IDS = 3
ERROR_STREAM_S = 4.0
API_SETTLE_S = 30.0


@dataclass(frozen=True)
class PipelineOptions:
    duration: float = 20.0
    """Seconds of streaming."""
    rate: float = 10.0
    """Simulated trades a second per symbol."""
    source: str = "sim"
    """sim, live, or auto (live where the exchange answers, else the simulator, with a warning)."""
    exchanges: tuple[str, ...] = ("binance", "kraken")
    write_timeout: float = 90.0
    """Seconds the consumer has to write the window into the lake."""
    latency_limit: float = 10.0
    """The p99 of receipt → lake commit allowed, in seconds."""


@dataclass
class _Window:
    """One stretch of streaming, as each stage saw it."""

    starts: dict[TopicPartition, int] = field(default_factory=dict)
    ends: dict[TopicPartition, int] = field(default_factory=dict)
    plan: StreamPlan | None = None
    report: StreamReport | None = None
    sent: list[TradeV2] = field(default_factory=list)
    control_url: str | None = None
    """The simulator's knobs, when the streams are simulated."""
    messages: list[KafkaMessage] = field(default_factory=list)
    read_at_us: int = 0

    @property
    def trades(self) -> list[TradeV2]:
        """Kafka's trades, each message id once (a resent batch repeats them)."""
        return list({m.trade.message_id: m.trade for m in self.messages if m.trade is not None}.values())

    @property
    def ids(self) -> list[str]:
        return [t.message_id for t in self.trades]

    @property
    def span(self) -> tuple[int, int] | None:
        """The trade times of the window, end exclusive; None when it holds no trade."""
        times = [t.timestamp for t in self.trades]
        return (min(times), max(times) + 1) if times else None


@dataclass
class _State:
    main: _Window = field(default_factory=_Window)
    table: Table | None = None
    gaps_before: float | None = None
    consumer: IcebergConsumer | None = None
    consumer_task: asyncio.Task[Any] | None = None
    consumer_stop: asyncio.Event = field(default_factory=asyncio.Event)
    rows: pa.Table | None = None
    """The lake's rows of the window's message ids."""
    api_items: list[dict[str, Any]] | None = None
    api_problem: str = "the API was not queried"


def pipeline_procedure(env: ValidationEnv, options: PipelineOptions) -> Procedure:
    state = _State()
    quiet = QuietStreams(env, PREFIX)

    async def services(context: StepContext) -> list[CheckResult]:
        names = (*SERVICES, *(("consumer",) if env.service_configured("consumer") else ()))
        return [await services_ready(env, names, check_id=f"{PREFIX}.services")]

    async def initialise(context: StepContext) -> list[CheckResult]:
        context.progress("registering the v2 schema", 0.1)
        return [await _register(env), await _topics(env), await _table(env, state), await quiet.stop()]

    async def stream(context: StepContext) -> list[CheckResult]:
        state.gaps_before = await _consumer_gaps(env)
        return await _stream(env, options, state.main, context, inject=_inject_gap)

    async def kafka(context: StepContext) -> list[CheckResult]:
        context.progress("reading the window back from Kafka")
        window = state.main
        await _read_window(env, window)
        return [_window_check(window), _ingest_check(env, window)]

    async def consume(context: StepContext) -> list[CheckResult]:
        written = await _consume(env, options, state, state.main, context)
        if written.status is CheckStatus.FAIL:
            return [written]
        assert state.table is not None
        return [
            written,
            await _gap_check(env, state),
            await asyncio.to_thread(_latency_check, env, state.table, state.main, options.latency_limit),
        ]

    async def lake(context: StepContext) -> list[CheckResult]:
        assert state.table is not None
        window = state.main
        began = time.monotonic()
        state.rows = await asyncio.to_thread(lake_rows, state.table, window.ids, between=window.span)
        return [_lake_read_check(state.rows, window, time.monotonic() - began)]

    async def query(context: StepContext) -> list[CheckResult]:
        return [await _query(env, state, context)]

    async def consistency(context: StepContext) -> list[CheckResult]:
        assert state.rows is not None
        in_lake = Counter(state.rows.column("message_id").to_pylist())
        return consistency_checks(PREFIX, state.main.trades, in_lake, _api_counts(state))

    async def schema(context: StepContext) -> list[CheckResult]:
        assert state.table is not None and state.rows is not None
        window = state.main
        rows = state.rows
        lake = [lake_datum(row) for row in rows.to_pylist()]
        results = [
            kafka_compliance(PREFIX, window.messages),
            iceberg_table_schema(PREFIX, state.table),
            iceberg_rows_compliance(PREFIX, rows),
        ]
        items = _window_items(state)
        if items is None:
            results.append(_api_skipped("api_schema", "API: items pass the v2 rules", state))
            results.append(same_values(PREFIX, window.trades, lake))
        else:
            results.append(api_compliance(PREFIX, items))
            results.append(same_values(PREFIX, window.trades, lake, [api_datum(i) for i in items]))
        return results

    async def timestamps(context: StepContext) -> list[CheckResult]:
        window = state.main
        results = trade_times(PREFIX, window.messages, window.read_at_us)
        results.append(kafka_sequence_order(PREFIX, window.messages))
        items = _window_items(state)
        if items is None or state.api_items is None:
            results.append(
                _api_skipped("timestamp_format", "API: ISO-8601 UTC µs, equal to the integer", state)
            )
            results.append(_api_skipped("api_order", "API: latest first, as asked", state))
        else:
            results.append(api_timestamp_format(PREFIX, items))
            results.append(api_order(PREFIX, state.api_items))
        return results

    async def error_handling(context: StepContext) -> list[CheckResult]:
        return await _error_handling(env, options, state, context)

    async def finish(context: StepContext) -> list[CheckResult]:
        return await _stop_consumer(state)

    async def restore_streams(context: StepContext) -> list[CheckResult]:
        return [await quiet.restore()]

    steps = [
        Step("services", "Services running", services, Stage.STACK, required=True),
        Step("initialise", "Schemas, topics and table", initialise, Stage.STACK, required=True),
        Step("stream", f"Stream for {options.duration:g} s", stream, Stage.STREAM, required=True),
        Step("kafka", "Kafka window", kafka, Stage.KAFKA),
        Step("consume", "Consumer writes the window", consume, Stage.CONSUMER, required=True),
        Step("lake", "Lake rows of the window", lake, Stage.ICEBERG, required=True),
        Step("query", "API over the window", query, Stage.API),
        Step("consistency", "Counts, duplicates, missing", consistency, Stage.PIPELINE),
        Step("schema", "v2 schema at every stage", schema, Stage.PIPELINE),
        Step("timestamps", "Timestamps and order", timestamps, Stage.PIPELINE),
        Step("error_handling", "Malformed input to the DLQ", error_handling, Stage.DLQ),
    ]
    if not env.service_configured("consumer"):
        steps.append(Step("finish", "Stop the in-process consumer", finish, Stage.CONSUMER, always=True))
    steps.append(Step("restore", "Restore the stream services", restore_streams, Stage.STACK, always=True))
    return Procedure(PREFIX, "Complete pipeline: stream → Kafka → Iceberg → API", tuple(steps))


# Initialise


async def _register(env: ValidationEnv) -> CheckResult:
    """Register the v2 schema under each topic's subject (idempotent), then read each id back."""

    def register() -> dict[str, tuple[int, bool]]:
        packaged = json.loads(trade_v2_schema_text())
        with RegistryClient(env.endpoints.registry_url) as registry:
            ids = {
                subject_for(t): registry.register(subject_for(t), trade_v2_schema_text()) for t in env.topics
            }
            return {s: (i, json.loads(registry.schema_text_by_id(i)) == packaged) for s, i in ids.items()}

    registered = await asyncio.to_thread(register)
    other = [subject for subject, (_, same) in registered.items() if not same]
    return CheckResult(
        f"{PREFIX}.registry_schema",
        "v2 schema registered",
        verdict(not other),
        ", ".join(f"{subject} → id {i}" for subject, (i, _) in registered.items())
        + (f"; the registry hands back another schema for {', '.join(other)}" if other else ""),
        {"schema_ids": {subject: i for subject, (i, _) in registered.items()}},
        stage=Stage.KAFKA,
    )


async def _topics(env: ValidationEnv) -> CheckResult:
    wanted = env.settings.streams.partitions
    await ensure_topics(env.endpoints.kafka_bootstrap, env.topics, wanted)
    ends = await log_ends(env.endpoints.kafka_bootstrap, env.topics)
    partitions = Counter(tp.topic for tp in ends)
    short = [t for t in env.topics if partitions[t] == 0]
    status = verdict(not short)
    if status is CheckStatus.PASS and any(partitions[t] != wanted for t in env.topics):
        status = CheckStatus.WARN  # made earlier with another count; tansu cannot add partitions
    return CheckResult(
        f"{PREFIX}.topics",
        "Topics exist",
        status,
        f"missing: {', '.join(short)}"
        if short
        else ", ".join(f"{t}: {partitions[t]} partitions" for t in env.topics)
        + (f" (streams.partitions is {wanted})" if status is CheckStatus.WARN else ""),
        {"partitions": dict(partitions), "configured": wanted},
        stage=Stage.KAFKA,
    )


async def _table(env: ValidationEnv, state: _State) -> CheckResult:
    table, created = await asyncio.to_thread(lambda: ensure_trades_table(open_catalog(env.layout)))
    state.table = table
    name = ".".join(table.name())
    return CheckResult(
        f"{PREFIX}.table",
        "Iceberg table",
        CheckStatus.PASS,
        f"{name} {'created now' if created else 'exists'}",
        {"created": created},
        stage=Stage.ICEBERG,
    )


# Streaming


Injector = Callable[[ValidationEnv, _Window], Awaitable[list[str]]]


async def _stream(
    env: ValidationEnv, options: PipelineOptions, window: _Window, context: StepContext, *, inject: Injector
) -> list[CheckResult]:
    """Stream for the duration; a third of the way in, `inject` plays its fault through the knobs."""
    settings = env.settings
    window.starts = await log_ends(env.endpoints.kafka_bootstrap, env.topics)
    window.plan = await plan_sources(
        settings,
        options.exchanges,
        source="live" if options.source == "auto" else options.source,
        fallback=options.source == "auto",
    )
    producer = producer_for(settings, dlq=DeadLetterQueue(env.dlq_directory, PRODUCER_DLQ))
    runs: list[StreamRun] = []
    injected: list[str] = []

    running = asyncio.Event()

    def started(run: StreamRun) -> None:
        runs.append(run)
        running.set()
        simulated = [c.protocol.url() for c in run.clients if c.stats.source == SIMULATED]
        if simulated:
            window.control_url = f"http://{urlsplit(simulated[0]).netloc}/control"

    async def meanwhile() -> None:
        """Progress once a second, and the injection a third of the way in."""
        await running.wait()
        began = time.monotonic()
        inject_at = began + options.duration / 3
        pending = True
        while True:
            if pending and time.monotonic() >= inject_at:
                pending = False
                try:
                    injected.extend(await inject(env, window))
                except (httpx.HTTPError, KafkaError, OSError) as error:  # the checks then say it is missing
                    injected.append(f"injection failed: {type(error).__name__}: {error}")
            done = (time.monotonic() - began) / options.duration
            context.progress(f"streaming: {runs[0].trades} trades", min(1.0, done))
            await asyncio.sleep(min(1.0, max(0.01, inject_at - time.monotonic())) if pending else 1.0)

    ticker = asyncio.create_task(meanwhile())
    try:
        window.report = await stream_trades(
            settings,
            window.plan,
            producer=producer,
            duration=options.duration,
            sim_rate=options.rate,
            on_trades=window.sent.extend,
            on_run=started,
        )
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    return [_stream_check(window, injected)]


def _stream_check(window: _Window, injected: list[str]) -> CheckResult:
    report = window.report
    assert report is not None and window.plan is not None
    producer = report.producer
    assert producer is not None
    lost = producer.overflowed + producer.abandoned
    origins = ", ".join(
        f"{s.name} ({s.source}: {s.trades} trades, {s.parse_errors} refused)" for s in report.streams
    )
    status = verdict(report.trades > 0 and not report.errors)
    if status is CheckStatus.PASS and (lost or window.plan.notes):
        status = CheckStatus.WARN
    detail = (
        f"{report.trades} trades in {report.seconds:.1f} s from {origins}; "
        f"Kafka acknowledged {producer.acked}, {producer.overflowed} overflowed and "
        f"{producer.abandoned} abandoned to the DLQ"
    )
    if report.errors:
        detail = f"the streams failed: {'; '.join(report.errors)}"
    return CheckResult(
        f"{PREFIX}.stream",
        "Trades streamed into Kafka",
        status,
        detail,
        {
            "trades": report.trades,
            "seconds": round(report.seconds, 2),
            "trades_per_s": round(report.trades / report.seconds, 1) if report.seconds else None,
            "acked": producer.acked,
            "overflowed": producer.overflowed,
            "abandoned": producer.abandoned,
            "send_failures": producer.send_failures,
            "producer_ack_p99_ms": _ms(percentile(producer.latencies_us, 0.99)),
        },
        [*window.plan.notes, *injected],
        stage=Stage.STREAM,
    )


async def _control(window: _Window, knob: str, **arguments: object) -> str:
    """Turn one simulator knob over its HTTP face; returns what was done, as a line of evidence."""
    assert window.control_url is not None
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.post(f"{window.control_url}/{knob}", params=arguments)
    response.raise_for_status()
    shown = ", ".join(f"{k}={v}" for k, v in arguments.items())
    return f"simulator: {knob}({shown})"


def _gap_exchange(window: _Window) -> str | None:
    """The simulated exchange whose trade ids are sequential: Binance, else Kraken v2."""
    assert window.plan is not None
    simulated = [e for e, origin in window.plan.sources.items() if origin == SIMULATED]
    return next((e for e in ("binance", "kraken") if e in simulated), None)


async def _inject_gap(env: ValidationEnv, window: _Window) -> list[str]:
    exchange = _gap_exchange(window)
    if exchange is None or (exchange == "kraken" and env.settings.kraken.version == "v1"):
        return []
    return [await _control(window, "skip_trade_ids", exchange=exchange, count=GAP_IDS)]


# Kafka


async def _read_window(env: ValidationEnv, window: _Window) -> None:
    window.ends = await log_ends(env.endpoints.kafka_bootstrap, env.topics)
    window.messages = await read_kafka(
        env.endpoints.kafka_bootstrap, env.endpoints.registry_url, window.starts, window.ends
    )
    window.read_at_us = time.time_ns() // 1000


def _window_check(window: _Window) -> CheckResult:
    spans = {
        tp: (window.starts.get(tp, 0), end)
        for tp, end in window.ends.items()
        if end > window.starts.get(tp, 0)
    }
    expected = sum(end - start for start, end in spans.values())
    read = len(window.messages)
    return CheckResult(
        f"{PREFIX}.kafka_window",
        "Kafka window read whole",
        verdict(read == expected and read > 0),
        f"{read} of {expected} messages read from {len(spans)} partitions",
        {"messages": read, "expected": expected, "distinct_ids": len(window.ids)},
        [
            f"{tp.topic}[{tp.partition}] offsets {start}..{end - 1}"
            for tp, (start, end) in sorted(spans.items())
        ],
        stage=Stage.KAFKA,
    )


def _ingest_check(env: ValidationEnv, window: _Window) -> CheckResult:
    sent = {t.message_id for t in window.sent}
    return judge_ingest(
        PREFIX, sent, set(window.ids), dead_lettered_trades(env.dlq_directory, PRODUCER_DLQ, sent)
    )


# Consumer


async def _consume(
    env: ValidationEnv, options: PipelineOptions, state: _State, window: _Window, context: StepContext
) -> CheckResult:
    """The stack's consumer service writes the window (started if it is down), else one in this process."""
    assert state.table is not None
    if not window.ends:
        return CheckResult(
            f"{PREFIX}.written",
            "Window written to the lake",
            CheckStatus.FAIL,
            "no window to wait for: its end offsets were never read from Kafka",
            stage=Stage.CONSUMER,
        )
    bootstrap = env.endpoints.kafka_bootstrap
    started = await _ensure_consuming(env, state)
    began = time.monotonic()
    try:
        recorded = await wait_written(
            state.table,
            env.settings.consumer.group,
            window.ends,
            options.write_timeout,
            context.progress,
            bootstrap=bootstrap,
        )
    except TimeoutError as error:
        stopped = state.consumer.stats.last_error if state.consumer is not None else ""
        return CheckResult(
            f"{PREFIX}.written",
            "Window written to the lake",
            CheckStatus.FAIL,
            str(error) + (f"; the in-process consumer stopped with {stopped}" if stopped else ""),
            evidence=started,
            stage=Stage.CONSUMER,
        )
    seconds = time.monotonic() - began
    return CheckResult(
        f"{PREFIX}.written",
        "Window written to the lake",
        CheckStatus.PASS,
        f"the lake recorded group {env.settings.consumer.group} at the window's end on every partition, "
        f"{seconds:.1f} s after the window was read back",
        {"wait_s": round(seconds, 2), "partitions": len(recorded)},
        [*started, *(f"{tp.topic}[{tp.partition}] → {o}" for tp, o in sorted(recorded.items()))],
        stage=Stage.CONSUMER,
    )


async def _ensure_consuming(env: ValidationEnv, state: _State) -> list[str]:
    """Start the consumer service if it is down, or run a consumer here when the stack has none."""
    if env.service_configured("consumer"):
        status = (await env.statuses()).get("consumer")
        if status is not None and status.state is ServiceState.READY:
            return []
        await env.restart("consumer")
        return [f"the consumer service was {status.state.value if status else 'unknown'}; started it"]
    if state.consumer_task is None:
        table = await asyncio.to_thread(open_trades_table, env.layout)  # its own: the readers refresh theirs
        state.consumer = IcebergConsumer(
            bootstrap=env.endpoints.kafka_bootstrap,
            registry_url=env.endpoints.registry_url,
            table=table,
            topics=env.topics,
            dlq=DeadLetterQueue(env.dlq_directory, CONSUMER_DLQ),
            group=env.settings.consumer.group,
            from_beginning=True,
        )
        state.consumer_task = asyncio.create_task(state.consumer.run(state.consumer_stop))
        return ["the stack has no consumer service; a consumer runs in this process"]
    return []


async def _stop_consumer(state: _State) -> list[CheckResult]:
    if state.consumer_task is None or state.consumer is None:
        return []
    state.consumer_stop.set()
    with contextlib.suppress(Exception):
        await state.consumer_task
    stats = state.consumer.stats
    return [
        CheckResult(
            f"{PREFIX}.consumer_accounted",
            "In-process consumer accounted for every message",
            verdict(stats.accounted and not stats.errors),
            f"consumed {stats.consumed}: written {stats.written}, dead-lettered {stats.dead_lettered}, "
            f"duplicates {stats.duplicates}; errors {stats.errors} {stats.last_error}".strip(),
            stage=Stage.CONSUMER,
        )
    ]


async def _consumer_gaps(env: ValidationEnv) -> float | None:
    """The consumer service's k2_sequence_gaps_total, None when it cannot be read."""
    if not env.service_configured("consumer"):
        return None
    try:
        page = await scrape(f"http://127.0.0.1:{env.settings.consumer.metrics_port}/metrics")
    except MetricsUnavailableError:
        return None
    return page.total("k2_sequence_gaps_total") or 0.0


def kafka_gaps(trades: Sequence[TradeV2]) -> dict[tuple[str, str], int]:
    """Per exchange and symbol, how many times the window's sequence numbers jump."""
    series: dict[tuple[str, str], list[int]] = {}
    for trade in trades:
        if trade.sequence_number is not None:
            series.setdefault((trade.exchange.value, trade.symbol), []).append(trade.sequence_number)
    jumps = {}
    for key, numbers in series.items():
        ordered = sorted(set(numbers))
        jumps[key] = sum(1 for a, b in itertools.pairwise(ordered) if b - a > 1)
    return {key: n for key, n in jumps.items() if n}


async def _gap_check(env: ValidationEnv, state: _State) -> CheckResult:
    window = state.main
    assert window.report is not None
    if state.consumer is not None:
        consumer_gaps: float | None = state.consumer.stats.sequence_gaps
    else:
        after = await _consumer_gaps(env)
        consumer_gaps = None if after is None or state.gaps_before is None else after - state.gaps_before
    return judge_gaps(
        _gap_exchange(window),
        {s.name: s.gaps for s in window.report.streams},
        kafka_gaps(window.trades),
        consumer_gaps,
    )


def judge_gaps(
    exchange: str | None,
    stream_gaps: dict[str, int],
    in_kafka: dict[tuple[str, str], int],
    consumer_gaps: float | None,
) -> CheckResult:
    """The gap injected into `exchange`'s ids is in Kafka's data, and the stream and the consumer saw it."""
    measured = {
        "stream_gaps": stream_gaps,
        "kafka_gaps": sum(in_kafka.values()),
        "consumer_gaps": consumer_gaps,
    }
    evidence = [f"{' '.join(key)}: the sequence jumps {n}×" for key, n in sorted(in_kafka.items())]
    title = "Sequence gap detected"
    if exchange is None:
        return CheckResult(
            f"{PREFIX}.sequence_gaps",
            title,
            CheckStatus.WARN,
            f"no gap injected (live streams); the streams saw {sum(stream_gaps.values())} gaps, the consumer "
            f"{consumer_gaps}",
            measured,
            evidence,
            stage=Stage.CONSUMER,
        )
    upper = Exchange(exchange.upper()).value
    missed = []
    if not any(key[0] == upper for key in in_kafka):
        missed.append(f"the window holds no jump in {exchange}'s sequences, so the gap never reached Kafka")
    if stream_gaps.get(exchange, 0) < 1:
        missed.append(f"the {exchange} stream counted no gap")
    if consumer_gaps is None:
        missed.append("the consumer's k2_sequence_gaps_total could not be read")
    elif consumer_gaps < 1:
        missed.append("the consumer's k2_sequence_gaps_total did not rise")
    return CheckResult(
        f"{PREFIX}.sequence_gaps",
        title,
        verdict(not missed),
        f"{GAP_IDS} {exchange} trade ids skipped: the stream counted {stream_gaps.get(exchange, 0)} gaps, "
        f"the consumer {consumer_gaps:g}, the window shows {sum(in_kafka.values())} jumps"
        if not missed
        else "; ".join(missed),
        measured,
        evidence,
        stage=Stage.CONSUMER,
    )


def _latency_check(env: ValidationEnv, table: Table, window: _Window, limit_s: float) -> CheckResult:
    """Receipt by the stream (ingestion_timestamp) → the lake snapshot that recorded the message written."""
    first = {}
    for m in window.messages:
        if m.trade is not None:
            first.setdefault(m.trade.message_id, m)
    committed = commit_times(
        table, env.settings.consumer.group, [(m.topic, m.partition, m.offset) for m in first.values()]
    )
    latencies = []
    unknown = 0
    for m in first.values():
        at = committed[(m.topic, m.partition, m.offset)]
        if at is None:
            unknown += 1
        else:
            assert m.trade is not None
            latencies.append(at * 1000 - m.trade.ingestion_timestamp)
    return judge_latency(latencies, unknown, limit_s)


def judge_latency(latencies: Sequence[int], unknown: int, limit_s: float) -> CheckResult:
    """Receipt → lake commit in µs per trade; `unknown` trades had no snapshot recording them."""
    p50, p99, worst = percentile(latencies, 0.5), percentile(latencies, 0.99), max(latencies, default=None)
    ok = bool(latencies) and not unknown and p99 is not None and p99 <= limit_s * 1e6
    detail = (
        f"receipt → Iceberg commit over {len(latencies)} trades: p50 {_ms(p50)} ms, p99 {_ms(p99)} ms, "
        f"max {_ms(worst)} ms (p99 limit {limit_s:g} s)"
    )
    if unknown:
        detail += f"; {unknown} trades have no snapshot recording them"
    return CheckResult(
        f"{PREFIX}.latency",
        "End-to-end latency",
        verdict(ok),
        detail,
        {
            "p50_ms": _ms(p50),
            "p99_ms": _ms(p99),
            "max_ms": _ms(worst),
            "trades": len(latencies),
            "unknown": unknown,
        },
        stage=Stage.PERFORMANCE,
    )


def _ms(micros: float | None) -> float | None:
    return None if micros is None else round(micros / 1000, 1)


# Lake and API


def _lake_read_check(rows: pa.Table, window: _Window, seconds: float) -> CheckResult:
    """The window's rows as the lake holds them now: what every later comparison reads."""
    span = window.span
    return CheckResult(
        f"{PREFIX}.lake_read",
        "Lake rows of the window read",
        verdict(rows.num_rows > 0),
        f"{rows.num_rows} rows for {len(window.ids)} message ids in {seconds:.1f} s"
        + (f", trade times [{span[0]}, {span[1]}) µs" if span else ""),
        {"rows": rows.num_rows, "ids": len(window.ids), "seconds": round(seconds, 2)},
        stage=Stage.ICEBERG,
    )


async def _query(env: ValidationEnv, state: _State, context: StepContext) -> CheckResult:
    """Ask the API for the window's trade times until it shows what the lake holds (or time runs out)."""
    span = state.main.span
    if span is None:
        state.api_problem = "no trades in the window to ask for"
        return CheckResult(
            f"{PREFIX}.api_query",
            "API answers for the window",
            CheckStatus.FAIL,
            state.api_problem,
            stage=Stage.API,
        )
    start, end = span
    assert state.rows is not None
    in_lake = set(state.rows.column("message_id").to_pylist())
    deadline = time.monotonic() + API_SETTLE_S
    began = time.monotonic()
    asked = 0
    while True:
        asked += 1
        try:
            items = await api_trades(env.api_url, start, end, limit=env.settings.api.max_limit)
        except ApiError as error:
            state.api_problem = str(error)
            return CheckResult(
                f"{PREFIX}.api_query",
                "API answers for the window",
                CheckStatus.FAIL,
                state.api_problem,
                {"asked": asked},
                stage=Stage.API,
            )
        unseen = in_lake - {item.get("message_id") for item in items}
        if not unseen or time.monotonic() > deadline:
            break
        context.progress(
            f"the API shows {len(in_lake) - len(unseen)} of {len(in_lake)} trades in the lake", None
        )
        await asyncio.sleep(0.5)
    state.api_items = items
    ours = _window_items(state) or []
    seconds = time.monotonic() - began
    return CheckResult(
        f"{PREFIX}.api_query",
        "API answers for the window",
        CheckStatus.PASS,
        f"GET /v1/trades over [{start}, {end}) µs: {len(items)} trades, {len(ours)} of them from the window, "
        f"after {asked} requests in {seconds:.1f} s"
        + (f"; {len(unseen)} trades in the lake never showed" if unseen else ""),
        {
            "items": len(items),
            "window_items": len(ours),
            "requests": asked,
            "seconds": round(seconds, 2),
            "others_in_time_window": len(items) - len(ours),
        },
        stage=Stage.API,
    )


def _window_items(state: _State) -> list[dict[str, Any]] | None:
    """The API items whose message id is one of the window's (others wrote in the same time range)."""
    if state.api_items is None:
        return None
    ids = set(state.main.ids)
    return [item for item in state.api_items if item.get("message_id") in ids]


def _api_counts(state: _State) -> Counter[str] | None:
    items = _window_items(state)
    return None if items is None else Counter(item["message_id"] for item in items)


def _api_skipped(name: str, title: str, state: _State) -> CheckResult:
    return CheckResult(
        f"{PREFIX}.{name}", title, CheckStatus.SKIP, f"no API answer: {state.api_problem}", stage=Stage.API
    )


# Error handling


async def _error_handling(
    env: ValidationEnv, options: PipelineOptions, state: _State, context: StepContext
) -> list[CheckResult]:
    """Malformed exchange messages and an undecodable Kafka payload go to the DLQ; the rest flows on."""
    prefix = f"{PREFIX}.error_handling"
    window = _Window()
    began = datetime.now(UTC)
    planted: list[tuple[TopicPartition, int]] = []
    injected_at: list[int] = []

    async def inject(env: ValidationEnv, window: _Window) -> list[str]:
        injected_at.append(time.time_ns() // 1000)
        assert window.plan is not None
        done = []
        for exchange in window.plan.sources if window.control_url else ():
            done.append(
                await _control(window, "inject_malformed", exchange=exchange, count=MALFORMED_PER_EXCHANGE)
            )
        planted.append(await _produce_undecodable(env))
        tp, offset = planted[0]
        done.append(f"produced {len(UNDECODABLE)} undecodable bytes to {tp.topic}[{tp.partition}]@{offset}")
        return done

    short = PipelineOptions(
        duration=min(options.duration, ERROR_STREAM_S),
        rate=options.rate,
        source=options.source,
        exchanges=options.exchanges,
    )
    streamed = await _stream(env, short, window, context, inject=inject)
    await _read_window(env, window)
    written = await _consume(env, options, state, window, context)
    assert state.table is not None
    in_lake = await asyncio.to_thread(lake_ids, state.table, window.ids, between=window.span)
    letters = await asyncio.to_thread(
        lambda: [letter for letter in collect_dead_letters(env.dlq_directory) if letter.failed_at >= began]
    )
    assert window.report is not None
    after = sum(1 for t in window.sent if injected_at and t.ingestion_timestamp > injected_at[0])
    return [
        *[_renamed(r, prefix) for r in (*streamed, written)],
        judge_stream_dlq(prefix, _injected_malformed(env, window), letters),
        judge_kafka_dlq(prefix, planted, letters),
        judge_carried_on(prefix, window.report, after, window.messages, planted),
        *consistency_checks(prefix, window.trades, in_lake),
    ]


def _renamed(result: CheckResult, prefix: str) -> CheckResult:
    """A check of the main run's kind, reported under `prefix`."""
    return replace(result, id=result.id.replace(PREFIX, prefix, 1))


async def _produce_undecodable(env: ValidationEnv) -> tuple[TopicPartition, int]:
    """Bytes that are not the wire format, keyed like a real trade so they share its partition."""
    topic = TOPICS[Exchange.BINANCE]
    producer = AIOKafkaProducer(bootstrap_servers=env.endpoints.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, UNDECODABLE, key=b"BTCUSDT")
    finally:
        await producer.stop()
    return TopicPartition(topic, sent.partition), sent.offset


def _injected_malformed(env: ValidationEnv, window: _Window) -> list[tuple[str, str]] | None:
    """(exchange, raw) of each malformed message the simulator sent, in its order; None for live streams."""
    if window.control_url is None or window.plan is None:
        return None
    cases = load_malformed(fixtures_dir())
    kinds = {"binance": "binance", "kraken": f"kraken_{env.settings.kraken.version}"}
    return [(e, raw) for e in window.plan.sources for raw in cases[kinds[e]][:MALFORMED_PER_EXCHANGE]]


def judge_stream_dlq(
    prefix: str, expected: list[tuple[str, str]] | None, letters: Sequence[DeadLetter]
) -> CheckResult:
    """Each malformed message the simulator sent is in its stream's DLQ, byte for byte, with a reason."""
    title = "Malformed exchange messages in the DLQ"
    if expected is None:
        return CheckResult(
            f"{prefix}.stream_dlq", title, CheckStatus.SKIP, "live streams: nothing injected", stage=Stage.DLQ
        )
    found = []
    absent = []
    for exchange, raw in expected:
        match = next(
            (
                letter
                for letter in letters
                if letter.source == f"stream-{exchange}"
                and letter.raw_bytes() == raw.encode()
                and letter.reason
            ),
            None,
        )
        if match is None:
            absent.append(f"{exchange}: {raw[:80]!r}")
        else:
            found.append(f"{exchange}: {raw[:60]!r} → {match.error_type}: {match.reason[:120]}")
    return CheckResult(
        f"{prefix}.stream_dlq",
        title,
        verdict(bool(expected) and not absent),
        f"{len(found)} of {len(expected)} injected messages in the DLQ with their original bytes and a reason"
        + (f"; not there: {absent[0]}" if absent else ""),
        {"injected": len(expected), "found": len(found)},
        found + [f"absent: {a}" for a in absent],
        stage=Stage.DLQ,
    )


def judge_kafka_dlq(
    prefix: str, planted: list[tuple[TopicPartition, int]], letters: Sequence[DeadLetter]
) -> CheckResult:
    """The undecodable payload planted at a known offset is in the DLQ with those very bytes and a reason."""
    title = "Undecodable Kafka payload in the DLQ"
    if not planted:
        return CheckResult(
            f"{prefix}.kafka_dlq", title, CheckStatus.FAIL, "the payload was never produced", stage=Stage.DLQ
        )
    tp, offset = planted[0]
    match = next(
        (e for e in letters if e.topic == tp.topic and e.partition == tp.partition and e.offset == offset),
        None,
    )
    where = f"{tp.topic}[{tp.partition}]@{offset}"
    if match is None:
        detail, ok = f"no DLQ entry for {where}", False
    elif match.raw_bytes() != UNDECODABLE:
        detail, ok = f"the DLQ entry for {where} holds other bytes than were produced", False
    else:
        detail, ok = (
            f"{where} in the DLQ with its original bytes: {match.error_type}: {match.reason}",
            bool(match.reason),
        )
    return CheckResult(
        f"{prefix}.kafka_dlq", title, verdict(ok), detail, {"position": where}, stage=Stage.DLQ
    )


def judge_carried_on(
    prefix: str,
    report: StreamReport,
    trades_after: int,
    messages: Sequence[KafkaMessage],
    planted: list[tuple[TopicPartition, int]],
) -> CheckResult:
    """After the bad input the streams still delivered; the only bad message in Kafka is the planted one."""
    after = trades_after
    planted_at = {(tp.topic, tp.partition, offset) for tp, offset in planted}
    others = [
        m for m in messages if m.problem is not None and (m.topic, m.partition, m.offset) not in planted_at
    ]
    problems = []
    if report.errors:
        problems.append(f"the streams failed: {'; '.join(report.errors)}")
    if not after:
        problems.append("no trade arrived after the bad input")
    if others:
        problems.append(
            f"{len(others)} more bad messages in Kafka, first {others[0].position}: {others[0].problem}"
        )
    return CheckResult(
        f"{prefix}.carried_on",
        "Stream and consumer carried on",
        verdict(not problems),
        f"{after} trades arrived after the bad input; the consumer wrote past it"
        if not problems
        else "; ".join(problems),
        {"trades_after": after, "reconnects": sum(s.reconnects for s in report.streams)},
        [f"{m.position}: {m.problem}" for m in others[:10]],
        stage=Stage.STREAM,
    )
