"""The seed's performance benchmarking: cold, warm and sustained throughput, and per-message latency.

Everything runs on the real stack (its broker, registry, object store and catalog) through the real
IcebergConsumer, but on a scratch topic and a scratch table defined like `market_data.trades_v2`, both
created here and removed at the end: the pipeline's own topics, table and dead-letter queue are never
touched. Sample trades are preloaded once; each phase is a fresh consumer in a group of its own, reading
them from the beginning:

- cold start: the first `cold_messages`, timed from opening the table (so the schema fetch from the
  registry, the table load and the group join count), and the first Iceberg transaction;
- warm: the same consumer's later batches (2 to N), each batch's messages over the time from the
  previous append landing to its own;
- sustained: `sustained_messages` end to end, from opening the table to the last append landing;
- latency: per message, as the seed's loop `consume_one(); process()` measures it (see LATENCY).

Each figure is held to the seed's hard limit (past it: fail) and shown beside its expected range
(worse than the range but within the limit: warn). The figures are compared with the saved baseline,
and saved as the new one when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from pyiceberg.exceptions import NoSuchTableError

from k2tui.consume.consumer import ConsumerStats, Fetched, IcebergConsumer
from k2tui.ingest.dlq import DeadLetterQueue
from k2tui.ingest.producer import subject_for
from k2tui.ingest.stats import percentile
from k2tui.lake.catalog import ensure_trades_table, open_catalog
from k2tui.lake.table import NAMESPACE
from k2tui.model.columnar import CheckedBatch
from k2tui.stack.registry.client import RegistryClient, RegistryRequestError, RegistryUnavailableError
from k2tui.validate.baseline import (
    Baseline,
    BaselineError,
    Better,
    Figure,
    Machine,
    compare,
    default_baseline_path,
    format_value,
    load_baseline,
    new_baseline,
    save_baseline,
)
from k2tui.validate.bench.consumer import preload_topic
from k2tui.validate.check import CheckResult, CheckStatus, Stage, make_check
from k2tui.validate.env import ValidationEnv, services_ready
from k2tui.validate.procedure import Procedure, Step, StepContext

_result = partial(make_check, Stage.PERFORMANCE)

SERVICES = ("proxy", "broker", "registry", "catalog")
SLOWABLE = ("object-store",)
"""Only warned about when not ready: a store slowed on purpose is what a run may be measuring, and one
that is really away fails the preparation, which writes the scratch table into it."""
TOPIC_PREFIX = "k2.validate.performance"
TABLE_PREFIX = "performance_"
PHASE_TIMEOUT_S = 120.0
PHASE_SECONDS_PER_MESSAGE = 0.02
"""A phase is given PHASE_TIMEOUT_S plus this per message (50 msg/s, half the seed's sustained limit)."""
LATENCY = (
    "per message, from the end of the previous message's processing to the end of its own (the seed's "
    "loop: consume one, process it), on the real consumer's loop; the append a full batch triggers "
    "counts in the latency of the message that triggered it"
)


@dataclass(frozen=True)
class PerformanceOptions:
    cold_messages: int = 500
    warm_messages: int = 5_000
    """Messages of the cold-start consumer: batch 1 is the cold start, batches 2 to N the warm state."""
    sustained_messages: int = 10_000
    latency_messages: int = 1_000
    batch_size: int | None = None
    """Records per Iceberg append; None: settings.consumer.batch_size."""
    baseline: Path | None = None
    """None: <home>/baselines/<environment>-performance.json."""
    save_baseline: bool = False
    tolerance: float | None = None
    """How much worse than the baseline a figure may get (0.25 = 25%); None: settings.validate.tolerance."""


@dataclass(frozen=True)
class Reference:
    """What the seed says of a figure: the range it expects, and a hard limit past which it degrades."""

    unit: str
    better: Better
    low: float | None = None
    high: float | None = None
    limit: float | None = None
    noise: float = 0.0
    """A change smaller than this is no regression against a baseline (a tail on a busy machine)."""

    def expected(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:,g}–{self.high:,g} {self.unit}"
        if self.high is not None:
            return f"< {self.high:,g} {self.unit}"
        return f"> {self.low:,g} {self.unit}"


COLD_START = Reference("s", Better.LOWER, limit=60, noise=0.5)
COLD_THROUGHPUT = Reference("msg/s", Better.HIGHER, low=15, high=30)
COLD_TX = Reference("ms", Better.LOWER, high=1_500, limit=2_000, noise=50)
WARM_THROUGHPUT = Reference("msg/s", Better.HIGHER, low=1_800, high=2_500)
WARM_TX = Reference("ms", Better.LOWER, low=180, high=200, noise=10)
SUSTAINED_THROUGHPUT = Reference("msg/s", Better.HIGHER, low=140, high=160, limit=100)
SUSTAINED_TX = Reference("ms", Better.LOWER, low=150, high=200, noise=10)
TX_P99 = Reference("ms", Better.LOWER, limit=2_000, noise=50)
LATENCY_P50 = Reference("ms", Better.LOWER, high=5, noise=0.5)
LATENCY_P95 = Reference("ms", Better.LOWER, high=20, noise=2)
LATENCY_P99 = Reference("ms", Better.LOWER, limit=200, noise=10)


@dataclass(frozen=True)
class Graded:
    figure: Figure
    status: CheckStatus
    sentence: str


def grade(name: str, value: float, reference: Reference) -> Graded:
    """Past the hard limit fails; worse than the expected range warns; within or better passes."""
    figure = Figure(name, value, reference.unit, reference.better, reference.noise)
    amount = f"{name} {format_value(value)} {reference.unit}"
    higher = reference.better is Better.HIGHER
    limit = reference.limit
    limit_text = f"{'>' if higher else '<'} {limit:,g} {reference.unit}" if limit is not None else ""
    if limit is not None and (value <= limit if higher else value >= limit):
        return Graded(figure, CheckStatus.FAIL, f"{amount}, past the seed's hard limit {limit_text}")
    if reference.low is None and reference.high is None:
        return Graded(figure, CheckStatus.PASS, f"{amount}, within the seed's hard limit {limit_text}")
    worse_bound = reference.low if higher else reference.high
    better_bound = reference.high if higher else reference.low
    worse = worse_bound is not None and (value < worse_bound if higher else value > worse_bound)
    better = better_bound is not None and (value > better_bound if higher else value < better_bound)
    where = "worse than" if worse else "better than" if better else "within"
    limit_text = f", hard limit {limit_text}" if limit_text else ""
    sentence = f"{amount}, {where} the seed's expected {reference.expected()}{limit_text}"
    return Graded(figure, CheckStatus.WARN if worse else CheckStatus.PASS, sentence)


def graded_check(
    check_id: str, title: str, graded: Sequence[Graded], note: str = "", **extra: object
) -> CheckResult:
    """One check over several figures: its status is the worst of theirs."""
    order = (CheckStatus.FAIL, CheckStatus.WARN, CheckStatus.PASS)
    status = next(s for s in order if any(g.status is s for g in graded))
    detail = "; ".join(g.sentence for g in graded) + (f" ({note})" if note else "")
    measured = {g.figure.name: round(g.figure.value, 3) for g in graded} | extra
    return CheckResult(check_id, title, status, detail, measured, stage=Stage.PERFORMANCE)


@dataclass(frozen=True)
class Flush:
    """One append that landed: when (after the Kafka commit too), messages it covered, its Iceberg TX."""

    at: float
    messages: int
    tx_seconds: float


@dataclass(frozen=True)
class PhaseRun:
    asked: int
    allowed_s: float
    started: float
    """perf_counter before the table was opened."""
    stats: ConsumerStats
    flushes: tuple[Flush, ...]
    latencies: tuple[float, ...]

    def shortfall(self) -> str:
        """Why the figures would lie ('' when every message asked for was written)."""
        s = self.stats
        if s.written == self.asked and s.consumed == self.asked:
            return ""
        why = f"; {s.last_error}" if s.last_error else f" in the {self.allowed_s:.0f} s allowed"
        return (
            f"the consumer wrote {s.written:,} of {self.asked:,} messages "
            f"({s.dead_lettered:,} dead-lettered, {s.duplicates:,} duplicates){why}"
        )


class _TimedConsumer(IcebergConsumer):
    """The real consumer, noting when each message is done and when each append lands.

    A message is done when it is decoded, checked and batched. The run loop does that a chunk of
    fetched messages at a time, so every message of a chunk is done when the chunk is, and its
    consume-and-process latency is the time since the previous chunk was done (for the first, since
    its decoding began). An append adds its own duration to the latency of the last message taken:
    one of the chunk that filled the batch (or found the flush interval up).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.latencies: list[float] = []
        self.flushes: list[Flush] = []
        self._since: float | None = None

    async def _drain_inbox(self) -> None:
        if self._since is None and self._inbox:
            self._since = time.perf_counter()
        await super()._drain_inbox()

    def _take(self, fetched: list[Fetched], checkable: list[Fetched], checked: CheckedBatch | None) -> None:
        super()._take(fetched, checkable, checked)
        done = time.perf_counter()
        if self._since is not None:
            self.latencies.extend([done - self._since] * len(fetched))
        self._since = done

    async def flush(self) -> None:
        began = time.perf_counter()
        consumed, written = self.stats.consumed, self.stats.written
        await super().flush()
        if self.stats.written > written:
            done = time.perf_counter()
            self.flushes.append(Flush(done, self.stats.consumed - consumed, self.stats.commit_seconds[-1]))
            self.latencies[-1] += done - began
            self._since = done


Checked = tuple[list[CheckResult], list[Figure]]
"""A phase's checks, and the figures it measured (for the baseline)."""


@dataclass
class _Scratch:
    """What the procedure creates, measures and removes; shared by its steps."""

    topic: str
    table: str
    dlq: Path
    figures: list[Figure] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def record(self, checked: Checked) -> list[CheckResult]:
        results, figures = checked
        self.figures += figures
        self.failed += [r.id for r in results if r.status is CheckStatus.FAIL]
        return results


def performance_procedure(env: ValidationEnv, options: PerformanceOptions) -> Procedure:
    settings = env.settings
    batch_size = options.batch_size or settings.consumer.batch_size
    tolerance = settings.validate.tolerance if options.tolerance is None else options.tolerance
    baseline_path = options.baseline or default_baseline_path(settings)
    tag = uuid.uuid4().hex[:8]
    dlq = tempfile.TemporaryDirectory(prefix="k2tui-performance-dlq-")
    scratch = _Scratch(f"{TOPIC_PREFIX}.{tag}", f"{NAMESPACE}.{TABLE_PREFIX}{tag}", Path(dlq.name))
    cold_and_warm = max(options.cold_messages, options.warm_messages)
    preloaded = max(cold_and_warm, options.sustained_messages, options.latency_messages)

    async def phase(messages: int, context: StepContext, label: str) -> PhaseRun:
        return await _run_phase(env, scratch, messages, batch_size, context, label)

    async def services(context: StepContext) -> list[CheckResult]:
        context.progress("checking the services")
        return [await services_ready(env, SERVICES, check_id="performance.services", optional=SLOWABLE)]

    async def prepare(context: StepContext) -> list[CheckResult]:
        context.progress(f"creating {scratch.table}, preloading {preloaded:,} messages")
        await asyncio.to_thread(ensure_trades_table, open_catalog(env.layout), scratch.table)
        loaded = await preload_topic(env.layout, scratch.topic, preloaded)
        rate = loaded.messages / loaded.produce_s if loaded.produce_s else 0.0
        detail = (
            f"{loaded.messages:,} sample trades in the scratch topic {scratch.topic} ({loaded.partitions} "
            f"partitions, produced at {rate:,.0f} msg/s); scratch table {scratch.table}; "
            f"batches of {batch_size:,}"
        )
        measured = {
            "messages": loaded.messages,
            "produce_msg_per_s": round(rate, 1),
            "batch_size": batch_size,
        }
        return [_result("performance.prepare", "Scratch topic and table", CheckStatus.PASS, detail, measured)]

    async def cold_warm(context: StepContext) -> list[CheckResult]:
        run = await phase(cold_and_warm, context, "cold start and warm batches")
        return scratch.record(cold_checks(run, options.cold_messages)) + scratch.record(warm_checks(run))

    async def sustained(context: StepContext) -> list[CheckResult]:
        return scratch.record(sustained_checks(await phase(options.sustained_messages, context, "sustained")))

    async def latency(context: StepContext) -> list[CheckResult]:
        return scratch.record(latency_check(await phase(options.latency_messages, context, "latency")))

    async def regression(context: StepContext) -> list[CheckResult]:
        context.progress(f"comparing with {baseline_path}")
        return [await asyncio.to_thread(regression_check, scratch.figures, baseline_path, tolerance)]

    async def save(context: StepContext) -> list[CheckResult]:
        return [await asyncio.to_thread(save_check, scratch.figures, scratch.failed, baseline_path)]

    async def clean_up(context: StepContext) -> list[CheckResult]:
        context.progress(f"removing {scratch.topic} and {scratch.table}")
        try:
            return [await _remove(env, scratch)]
        finally:
            dlq.cleanup()

    stage = Stage.PERFORMANCE
    steps = [
        Step("services", "Services running", services, Stage.STACK, required=True),
        Step("prepare", "Scratch topic, table and preloaded trades", prepare, stage, required=True),
        Step("cold_warm", f"Cold start and warm batches, {cold_and_warm:,} messages", cold_warm, stage),
        Step("sustained", f"Sustained, {options.sustained_messages:,} messages", sustained, stage),
        Step("latency", f"Per-message latency, {options.latency_messages:,} messages", latency, stage),
        Step("regression", "Against the baseline", regression, stage),
    ]
    if options.save_baseline:
        steps.append(Step("save", "Save the baseline", save, stage))
    steps.append(Step("clean_up", "Remove the scratch topic and table", clean_up, stage, always=True))
    return Procedure("performance", "Performance: throughput, Iceberg TX and latency", tuple(steps))


async def _run_phase(
    env: ValidationEnv, scratch: _Scratch, messages: int, batch_size: int, context: StepContext, label: str
) -> PhaseRun:
    """A fresh consumer, in a new group, over the first `messages` of the scratch topic."""
    settings = env.settings
    endpoints = env.endpoints
    allowed = PHASE_TIMEOUT_S + messages * PHASE_SECONDS_PER_MESSAGE
    context.progress(f"{label}: opening the table")
    started = time.perf_counter()
    table = await asyncio.to_thread(open_catalog(env.layout).load_table, scratch.table)
    consumer = _TimedConsumer(
        bootstrap=endpoints.kafka_bootstrap,
        registry_url=endpoints.registry_url,
        table=table,
        topics=[scratch.topic],
        dlq=DeadLetterQueue(scratch.dlq, "performance"),
        group=f"{scratch.topic}.{uuid.uuid4().hex[:8]}",
        batch_size=batch_size,
        flush_interval=settings.consumer.flush_interval,
        max_messages=messages,
        from_beginning=True,
        shutdown_timeout=settings.consumer.shutdown_timeout,
    )
    stop = asyncio.Event()
    timer = asyncio.get_running_loop().call_later(allowed, stop.set)
    watcher = asyncio.ensure_future(_follow(consumer, messages, context, label))
    try:
        stats = await consumer.run(stop)
    finally:
        timer.cancel()
        watcher.cancel()
    return PhaseRun(messages, allowed, started, stats, tuple(consumer.flushes), tuple(consumer.latencies))


async def _follow(consumer: IcebergConsumer, messages: int, context: StepContext, label: str) -> None:
    while True:
        written = consumer.stats.written
        context.progress(f"{label}: {written:,} of {messages:,} written", written / messages)
        await asyncio.sleep(0.5)


def cold_checks(run: PhaseRun, cold_messages: int) -> Checked:
    """Time to the append of the first `cold_messages`, from opening the table; the first transaction."""
    if shortfall := run.shortfall():
        return [_result("performance.cold_start", "Cold start", CheckStatus.FAIL, shortfall)], []
    covered, landed = 0, run.flushes[-1].at
    for flush in run.flushes:
        covered += flush.messages
        if covered >= cold_messages:
            landed = flush.at
            break
    seconds = landed - run.started
    start = grade("cold start", seconds, COLD_START)
    rate = grade("cold start throughput", covered / seconds, COLD_THROUGHPUT)
    first = grade("cold first Iceberg TX", run.flushes[0].tx_seconds * 1000, COLD_TX)
    how = (
        f"{covered:,} messages, from opening the table (registry schema fetch and group join included) "
        "to their append landing"
    )
    return [
        graded_check("performance.cold_start", "Cold start", [start, rate], how, messages=covered),
        graded_check("performance.cold_iceberg_tx", "Cold start: first Iceberg transaction", [first]),
    ], [start.figure, rate.figure, first.figure]


def warm_checks(run: PhaseRun) -> Checked:
    """Per batch, after the first: its messages over the time from the previous append landing to its own."""
    title = "Warm batches: throughput"
    if shortfall := run.shortfall():
        return [_result("performance.warm_throughput", title, CheckStatus.FAIL, shortfall)], []
    warm = run.flushes[1:]
    if not warm:
        why = "one batch only: the warm state needs more messages than one batch (raise --warm-messages)"
        return [_result("performance.warm_throughput", title, CheckStatus.FAIL, why)], []
    rates = [
        flush.messages / (flush.at - before.at) for before, flush in zip(run.flushes, warm, strict=False)
    ]
    tx = [flush.tx_seconds * 1000 for flush in warm]
    throughput = grade("warm batch throughput p50", _p(rates, 0.5), WARM_THROUGHPUT)
    tx50 = grade("warm Iceberg TX p50", _p(tx, 0.5), WARM_TX)
    tx99 = grade("warm Iceberg TX p99", _p(tx, 0.99), TX_P99)
    how = (
        f"median of batches 2–{len(run.flushes)}, each batch's messages over the time from the previous "
        f"append landing to its own; slowest batch {min(rates):,.0f} msg/s"
    )
    return [
        graded_check("performance.warm_throughput", title, [throughput], how, batches=len(warm)),
        graded_check(
            "performance.warm_iceberg_tx",
            "Warm batches: Iceberg transactions",
            [tx50, tx99],
            f"{len(tx)} appends",
        ),
    ], [throughput.figure, tx50.figure, tx99.figure]


def sustained_checks(run: PhaseRun) -> Checked:
    """All messages end to end: from opening the table to the last append landing."""
    title = "Sustained throughput"
    if shortfall := run.shortfall():
        return [_result("performance.sustained_throughput", title, CheckStatus.FAIL, shortfall)], []
    seconds = run.flushes[-1].at - run.started
    throughput = grade("sustained throughput", run.asked / seconds, SUSTAINED_THROUGHPUT)
    tx = [flush.tx_seconds * 1000 for flush in run.flushes]
    tx50 = grade("sustained Iceberg TX p50", _p(tx, 0.5), SUSTAINED_TX)
    tx99 = grade("sustained Iceberg TX p99", _p(tx, 0.99), TX_P99)
    steady = run.stats.sustained_rate() or 0.0
    how = (
        f"{run.asked:,} messages in {seconds:.1f} s from opening the table to the last append landing; "
        f"{steady:,.0f} msg/s from the first fetch"
    )
    return [
        graded_check("performance.sustained_throughput", title, [throughput], how, seconds=round(seconds, 2)),
        graded_check(
            "performance.sustained_iceberg_tx",
            "Sustained: Iceberg transactions",
            [tx50, tx99],
            f"{len(tx)} appends",
        ),
    ], [throughput.figure, tx50.figure, tx99.figure]


def latency_check(run: PhaseRun) -> Checked:
    title = "Per-message latency"
    if shortfall := run.shortfall():
        return [_result("performance.latency", title, CheckStatus.FAIL, shortfall)], []
    ms = [latency * 1000 for latency in run.latencies]
    if not ms:
        why = "no per-message timings were recorded: the timing hook on IcebergConsumer._take never ran"
        return [_result("performance.latency", title, CheckStatus.FAIL, why)], []
    graded = [
        grade("latency p50", _p(ms, 0.5), LATENCY_P50),
        grade("latency p95", _p(ms, 0.95), LATENCY_P95),
        grade("latency p99", _p(ms, 0.99), LATENCY_P99),
    ]
    how = f"{len(ms):,} messages, {len(run.flushes)} appends, slowest {max(ms):,.1f} ms; latency is {LATENCY}"
    return [graded_check("performance.latency", title, graded, how)], [g.figure for g in graded]


def regression_check(figures: list[Figure], path: Path, tolerance: float) -> CheckResult:
    """Fails naming each figure worse than the baseline by more than the tolerance."""
    check_id, title = "performance.regression", "Regression against the baseline"
    try:
        baseline = load_baseline(path)
    except BaselineError as error:
        return _result(check_id, title, CheckStatus.FAIL, str(error))
    if baseline is None:
        return _result(
            check_id,
            title,
            CheckStatus.SKIP,
            "no baseline yet: run with --save-baseline",
            evidence=[str(path)],
        )
    if not figures:
        return _result(check_id, title, CheckStatus.SKIP, "nothing was measured to compare")
    comparison = compare(figures, baseline, tolerance)
    evidence = [_provenance(baseline, path), *comparison.held]
    evidence += [f"{name}: not in the baseline" for name in comparison.unmatched]
    measured = {"regressions": [r.figure.name for r in comparison.regressions], "tolerance": tolerance}
    if comparison.regressions:
        detail = "; ".join(r.describe() for r in comparison.regressions)
        return _result(check_id, title, CheckStatus.FAIL, detail, measured, evidence)
    detail = (
        f"{len(comparison.held)} figures within {tolerance:.0%} of the baseline saved "
        f"{baseline.saved_at:%Y-%m-%d %H:%M} UTC"
    )
    return _result(check_id, title, CheckStatus.PASS, detail, measured, evidence)


def save_check(figures: list[Figure], failed: list[str], path: Path) -> CheckResult:
    """A baseline is only saved from a run whose every check held: it is what later runs must match."""
    check_id, title = "performance.baseline_saved", "Baseline saved"
    if failed:
        why = f"not saved: a baseline comes from a run that holds, and {', '.join(failed)} failed"
        return _result(check_id, title, CheckStatus.FAIL, why)
    if not figures:
        return _result(check_id, title, CheckStatus.FAIL, "not saved: nothing was measured")
    try:
        save_baseline(new_baseline(figures), path)
    except OSError as error:
        return _result(check_id, title, CheckStatus.FAIL, f"could not write {path}: {error}")
    return _result(
        check_id, title, CheckStatus.PASS, f"{len(figures)} figures saved to {path}", {"path": str(path)}
    )


def _provenance(baseline: Baseline, path: Path) -> str:
    this = Machine.this()
    other = "" if baseline.machine == this else f" (this machine: {this.describe()})"
    return (
        f"baseline {path}, saved {baseline.saved_at:%Y-%m-%d %H:%M} UTC by k2tui {baseline.k2tui_version} "
        f"on {baseline.machine.describe()}{other}"
    )


async def _remove(env: ValidationEnv, scratch: _Scratch) -> CheckResult:
    """Purge the scratch table (its files too), forget the topic's schema subject and delete the topic."""
    left = []
    try:
        await asyncio.to_thread(_purge, env, scratch.table)
    except Exception as error:  # whatever stops it, the figures stand: name what is left
        left.append(f"table {scratch.table} ({type(error).__name__}: {error})")
    try:
        await asyncio.to_thread(_forget_subject, env, subject_for(scratch.topic))
    except (RegistryUnavailableError, RegistryRequestError) as error:
        left.append(f"registry subject {subject_for(scratch.topic)} ({error})")
    admin = AIOKafkaAdminClient(bootstrap_servers=env.endpoints.kafka_bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        await admin.delete_topics([scratch.topic])
    except Exception as error:
        left.append(f"topic {scratch.topic} ({type(error).__name__}: {error})")
    finally:
        await admin.close()
    title = "Scratch topic and table removed"
    if left:
        return _result("performance.clean_up", title, CheckStatus.WARN, f"left behind: {'; '.join(left)}")
    return _result(
        "performance.clean_up", title, CheckStatus.PASS, f"{scratch.topic} and {scratch.table} removed"
    )


def _forget_subject(env: ValidationEnv, subject: str) -> None:
    with RegistryClient(env.endpoints.registry_url) as registry:
        try:
            registry.delete_subject(subject)
        except RegistryRequestError as error:
            if error.status != 404:  # 404: never registered (the preparation stopped before it)
                raise


def _purge(env: ValidationEnv, table: str) -> None:
    with contextlib.suppress(NoSuchTableError):
        open_catalog(env.layout).purge_table(table)


def _p(values: Sequence[float], q: float) -> float:
    found = percentile(values, q)
    assert found is not None, "a percentile of no values"
    return found
