"""The seed's Consumer E2E Validation Procedure, on the real stack: N known trades through Kafka to Iceberg.

The stack's consumer service is stopped for the run (and started again at the end, whatever happened),
the group's backlog is written first, then N known trades are produced to the real topics and an
in-process consumer in the real group takes exactly N of them, serving /metrics on the port Prometheus
scrapes as job `consumer`. What it did is then read back from Iceberg, through the query engine, from
the metrics and from the dead-letter queue, and held to the seed's expectations.

Tests insert a sabotage Step between these steps (`ConsumerValidation.procedure().steps`); the run's
state (`trades`, `batch_size`) is public for them.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from pyiceberg.expressions import And, GreaterThanOrEqual, In, LessThanOrEqual
from pyiceberg.table import Table

from k2tui.consume.consumer import ConsumerStats, IcebergConsumer
from k2tui.consume.writer import COMMIT_ID
from k2tui.ingest.dlq import DeadLetter, DeadLetterQueue, UnreadableLine, read_dead_letters
from k2tui.ingest.runner import producer_for
from k2tui.lake.catalog import open_trades_table
from k2tui.lake.query import QueryEngine
from k2tui.model.samples import sample_trades
from k2tui.model.trade import TradeV2
from k2tui.stack.metrics import (
    MetricsUnavailableError,
    Prometheus,
    Scrape,
    bucket_delta,
    histogram_quantile,
    rate,
    scrape,
)
from k2tui.stack.supervisor import FaultAction, ServiceState
from k2tui.validate.check import CheckResult, CheckStatus, Stage, verdict
from k2tui.validate.consumer_checks import (
    ConsumeFigures,
    LakeFigures,
    Letter,
    MetricsReading,
    SnapshotView,
    id_counts,
    judge_backlog,
    judge_baseline,
    judge_consumption,
    judge_dlq,
    judge_lake,
    judge_metrics,
    judge_produced,
    judge_query,
    predicted_snapshots,
)
from k2tui.validate.env import ValidationEnv, services_ready
from k2tui.validate.procedure import Procedure, Step, StepContext
from k2tui.validate.quiet import QuietStreams

REQUIRED_SERVICES = ("broker", "registry", "object-store", "catalog")
SERVICE = "consumer"
QUERY_SYMBOL = "BTCUSDT"
"""The seed's; a run too short to hold one queries its commonest symbol instead."""
QUERY_LIMIT = 100
RUN_FLUSH_INTERVAL_S = 30.0
"""The run's flush interval: long enough that only a full batch (or the end) closes one, so the
snapshot count is what the batch size predicts, even on a loaded machine."""
DRAIN_QUIET_S = 2.0
"""The backlog is written once no message arrived for this long after the group was joined."""
DRAIN_LIMIT_S = 120.0
TRADE_SPACING_US = 5_000
"""Upper bound of the gap between consecutive sample trades: the run's trades end before now."""
PROMETHEUS_CATCH_UP_S = 10.0
WATCH_S = 0.1


@dataclass(frozen=True)
class ConsumerOptions:
    messages: int = 5000
    batch_size: int | None = None
    """None: the consumer.batch_size setting (the seed's 500)."""


@dataclass(frozen=True)
class LakeState:
    snapshot_ids: tuple[int, ...]
    total_records: int | None
    """The current snapshot's summary total-records (0 for an empty table; None when it is not stated)."""


@dataclass(frozen=True)
class DlqState:
    ids: frozenset[str]
    unreadable: frozenset[str]


@dataclass
class _Consumption:
    """One in-process consumer run, as the steps after it read it."""

    stats: ConsumerStats
    joined: float | None
    """When the group was joined (monotonic); None if it never was."""
    before: Scrape | None
    after: Scrape | None
    ended: float


class ConsumerValidation:
    """The procedure and the state its steps share."""

    def __init__(self, env: ValidationEnv, options: ConsumerOptions) -> None:
        self.env = env
        self.options = options
        self.batch_size = options.batch_size or env.settings.consumer.batch_size
        self.trades: list[TradeV2] = []
        self.stopped_service = ""
        self.quiet = QuietStreams(env, "consumer")
        self.baseline: LakeState | None = None
        self.dlq_before = DlqState(frozenset(), frozenset())
        self.run: _Consumption | None = None
        self._server: WSGIServer | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env.settings.consumer.metrics_port}/metrics"

    def procedure(self) -> Procedure:
        n = self.options.messages
        return Procedure(
            "consumer",
            f"Consumer E2E: {n:,} known messages, Kafka → Iceberg → query",
            (
                Step("services", "Services running", self._services, Stage.STACK, required=True),
                Step("clean_state", "Clean state", self._clean_state, Stage.CONSUMER, required=True),
                Step("baseline", "Baseline", self._baseline, Stage.ICEBERG, required=True),
                Step("produce", f"Produce {n:,} known messages", self._produce, Stage.KAFKA, required=True),
                Step("consume", f"Consume {n:,}", self._consume, Stage.CONSUMER),
                Step("iceberg", "Iceberg writes", self._iceberg, Stage.ICEBERG),
                Step("query", "Query validation", self._query, Stage.QUERY),
                Step("metrics", "Performance metrics", self._metrics, Stage.METRICS),
                Step("dlq", "Dead-letter queue", self._dlq, Stage.DLQ),
                Step("restore", "Restore the services", self._restore, Stage.STACK, always=True),
            ),
        )

    # ---- steps ---------------------------------------------------------------------------------

    async def _services(self, context: StepContext) -> list[CheckResult]:
        return [
            await services_ready(
                self.env, REQUIRED_SERVICES, check_id="consumer.services", optional=("prometheus",)
            )
        ]

    async def _clean_state(self, context: StepContext) -> list[CheckResult]:
        results = [await self._stop_service(), await self.quiet.stop()]
        if any(r.status is CheckStatus.FAIL for r in results):  # not the run's messages alone in the group
            return results
        context.progress("writing the group's backlog")
        consumer = self._consumer(max_messages=None)
        began = time.monotonic()
        caught_up, run = await self._watch(consumer, context, _caught_up, began + DRAIN_LIMIT_S)
        stats = run.stats
        evidence = [
            f"group {self.env.settings.consumer.group}, topics {', '.join(self.env.topics)}",
            f"caught up: no message for {DRAIN_QUIET_S:g} s after joining the group",
        ]
        results.append(
            judge_backlog(
                caught_up,
                stats.consumed,
                stats.written,
                stats.dead_lettered,
                stats.duplicates,
                stats.last_error,
                time.monotonic() - began,
                evidence,
            )
        )
        return results

    async def _stop_service(self) -> CheckResult:
        statuses = await self.env.statuses()
        status = statuses.get(SERVICE)
        running = status is not None and status.state not in (ServiceState.STOPPED, ServiceState.EXITED)
        if status is None or status.state is ServiceState.UNAVAILABLE or not running:
            state = "not part of this stack" if status is None else status.state.value
            return CheckResult(
                "consumer.service_stopped",
                "Consumer service out of the way",
                CheckStatus.PASS,
                f"the consumer service is {state}: nothing to stop",
                stage=Stage.STACK,
            )
        done = await self.env.fault(SERVICE, FaultAction.STOP)
        self.stopped_service = done
        after = (await self.env.statuses())[SERVICE]
        return CheckResult(
            "consumer.service_stopped",
            "Consumer service out of the way",
            verdict(after.state is ServiceState.STOPPED),
            f"{done}; now {after.state.value}",
            evidence=[
                "stopped for the run so this procedure's consumer is the group's only member and owns "
                f"port {self.env.settings.consumer.metrics_port}; the last step starts it again, whatever "
                "happens in between"
            ],
            stage=Stage.STACK,
        )

    async def _baseline(self, context: StepContext) -> list[CheckResult]:
        self.baseline = baseline = await asyncio.to_thread(self._lake_state)
        self.dlq_before = await asyncio.to_thread(self._dlq_state)
        dlq = f"DLQ: {len(self.dlq_before.ids)} entries in {self.env.dlq_directory} before the run"
        return [judge_baseline(len(baseline.snapshot_ids), baseline.total_records, [dlq])]

    async def _produce(self, context: StepContext) -> list[CheckResult]:
        n = self.options.messages
        start_us = time.time_ns() // 1000 - n * TRADE_SPACING_US
        self.trades = list(sample_trades(n, seed=secrets.randbits(64), start_us=start_us))
        producer = producer_for(self.env.settings, dlq=DeadLetterQueue(self.env.dlq_directory, "producer"))
        producer.submit(self.trades)
        stop = asyncio.Event()
        stop.set()  # send what was submitted, then return
        context.progress(f"producing {n:,} trades")
        began = time.monotonic()
        await producer.run(stop, drain_timeout=60.0 + n / 1000)
        seconds = time.monotonic() - began
        symbols = sorted({t.symbol for t in self.trades})
        evidence = [
            "v2 trades as Avro with the registered schema, Confluent wire format, keyed by symbol",
            f"topics: {', '.join(self.env.topics)}; symbols: {', '.join(symbols)}",
            "exchange trade ids consecutive per symbol, so no sequence gap is expected",
        ]
        return [judge_produced(producer.stats.acked, n, seconds, producer.stats.last_error, evidence)]

    async def _consume(self, context: StepContext) -> list[CheckResult]:
        n = self.options.messages
        consumer = self._consumer(max_messages=n)
        for topic in self.env.topics:  # exported at 0, so the first scrape is a baseline for the rate
            consumer.metrics.consumed.labels(topic)
        port = self.env.settings.consumer.metrics_port
        unserved: list[CheckResult] = []
        try:
            self._server = consumer.metrics.serve(port)
        except OSError as error:  # consumed all the same; the metrics step then has nothing to read
            unserved.append(
                CheckResult(
                    "consumer.metrics_endpoint",
                    "Consumer /metrics served",
                    CheckStatus.FAIL,
                    f"cannot serve /metrics on port {port} (consumer.metrics_port): {error}",
                    stage=Stage.METRICS,
                )
            )
        began = time.monotonic()
        _, self.run = await self._watch(consumer, context, lambda run: False, began + 60 + n / 50)
        stats = self.run.stats
        letters = [_letter(d) for d in await asyncio.to_thread(self._new_letters)]
        figures = ConsumeFigures(
            expected=n,
            consumed=stats.consumed,
            written=stats.written,
            dead_lettered=stats.dead_lettered,
            duplicates=stats.duplicates,
            errors=stats.errors,
            seconds=self.run.ended - stats.started,
            sustained_rate=stats.sustained_rate(),
            snapshots=stats.snapshots,
            commit_seconds=list(stats.commit_seconds),
            gaps=stats.sequence_gaps,
            gap_events=list(consumer.sequences.recent_gaps),
            last_error=stats.last_error,
            retried=stats.transient_errors,
            letters=letters,
            cold_start=predicted_snapshots(n, self.batch_size) <= 1,
        )
        return unserved + judge_consumption(figures)

    async def _iceberg(self, context: StepContext) -> list[CheckResult]:
        assert self.baseline is not None
        baseline = self.baseline
        table = await asyncio.to_thread(open_trades_table, self.env.layout)
        after = _lake_state(table)
        known = set(baseline.snapshot_ids)
        views = [
            SnapshotView(
                s.snapshot_id,
                str(s.summary.operation.value) if s.summary else "?",
                dict(s.summary.additional_properties) if s.summary else {},
                bool(s.summary and COMMIT_ID in s.summary.additional_properties),
            )
            for s in table.metadata.snapshots
            if s.snapshot_id not in known
        ]
        context.progress("looking up every produced message id")
        found = await asyncio.to_thread(self._ids_in_table, table)
        figures = LakeFigures(
            expected=self.options.messages,
            batch_size=self.batch_size,
            snapshots_before=len(baseline.snapshot_ids),
            snapshots_after=len(after.snapshot_ids),
            records_before=baseline.total_records,
            records_after=after.total_records,
            new_snapshots=views,
            expired=len(known - set(after.snapshot_ids)),
            id_counts=id_counts((t.message_id for t in self.trades), found),
            flush_interval=RUN_FLUSH_INTERVAL_S,
        )
        return judge_lake(figures)

    async def _query(self, context: StepContext) -> list[CheckResult]:
        symbols = Counter(t.symbol for t in self.trades)
        symbol = QUERY_SYMBOL if QUERY_SYMBOL in symbols else symbols.most_common(1)[0][0]
        ours = sorted((t for t in self.trades if t.symbol == symbol), key=lambda t: -t.timestamp)
        first, last = min(t.timestamp for t in self.trades), max(t.timestamp for t in self.trades)
        engine = QueryEngine(self.env.layout)
        try:
            rows = await asyncio.to_thread(
                engine.query_trades,
                symbol=symbol,
                start=first,
                end=last + 1,
                limit=QUERY_LIMIT,
                order_by="timestamp",
                order_direction="desc",
            )
        finally:
            engine.close()
        query = (
            f"QueryEngine().query_trades(symbol={symbol!r}, start={first}, end={last + 1}, "
            f"limit={QUERY_LIMIT}, order_by='timestamp', order_direction='desc') (the run's time span)"
        )
        return judge_query(rows, [t.message_id for t in ours[:QUERY_LIMIT]], symbol, query)

    async def _metrics(self, context: StepContext) -> list[CheckResult]:
        run = self.run
        if run is None or self._server is None:
            reading = MetricsReading("no /metrics was served by a consumer run", None, None, None, None, None)
        else:
            reading = await self._reading(run, context)
        return judge_metrics(
            reading,
            self.batch_size,
            predicted_snapshots(self.options.messages, self.batch_size),
            self.options.messages,
        )

    async def _dlq(self, context: StepContext) -> list[CheckResult]:
        letters = [_letter(d) for d in await asyncio.to_thread(self._new_letters)]
        unreadable = sorted(
            (await asyncio.to_thread(self._dlq_state)).unreadable - self.dlq_before.unreadable
        )
        return [judge_dlq(letters, unreadable)]

    async def _restore(self, context: StepContext) -> list[CheckResult]:
        return [*await self._restore_service(context), await self.quiet.restore()]

    async def _restore_service(self, context: StepContext) -> list[CheckResult]:
        if self._server is not None:
            await asyncio.to_thread(self._server.shutdown)  # waits out its poll interval
            self._server.server_close()
            self._server = None
        if not self.stopped_service:
            status = (await self.env.statuses()).get(SERVICE)
            state = "not part of this stack" if status is None else status.state.value
            return [
                CheckResult(
                    "consumer.restored",
                    "Consumer service restored",
                    CheckStatus.PASS,
                    f"this run did not stop the consumer service (it is {state}): nothing to restore",
                    stage=Stage.STACK,
                )
            ]
        context.progress("starting the consumer service again")
        done = await self.env.fault(SERVICE, FaultAction.START)
        status = (await self.env.statuses())[SERVICE]
        return [
            CheckResult(
                "consumer.restored",
                "Consumer service restored",
                verdict(status.state is ServiceState.READY),
                f"{done}; now {status.state.value}",
                evidence=[f"stopped at the start of the run ({self.stopped_service}) and started again"],
                stage=Stage.STACK,
            )
        ]

    # ---- helpers -------------------------------------------------------------------------------

    def _consumer(self, *, max_messages: int | None) -> IcebergConsumer:
        """A consumer as the service runs it (same group, topics, DLQ), without lake maintenance."""
        settings = self.env.settings
        endpoints = self.env.endpoints
        return IcebergConsumer(
            bootstrap=endpoints.kafka_bootstrap,
            registry_url=endpoints.registry_url,
            table=open_trades_table(self.env.layout),
            topics=self.env.topics,
            dlq=DeadLetterQueue(self.env.dlq_directory, "consumer"),
            group=settings.consumer.group,
            batch_size=self.batch_size,
            flush_interval=RUN_FLUSH_INTERVAL_S,
            max_messages=max_messages,
            from_beginning=True,  # as the service: a new group writes what Kafka holds
            shutdown_timeout=settings.consumer.shutdown_timeout,
            topic_partitions=settings.streams.partitions,
            large_gap=settings.consumer.large_gap,
        )

    async def _watch(
        self,
        consumer: IcebergConsumer,
        context: StepContext,
        done: Callable[[_Watch], bool],
        deadline: float,
    ) -> tuple[bool, _Consumption]:
        """Run `consumer` until it stops by itself, `done` says so, or the deadline; report progress.

        Returns whether it stopped by itself or by `done` (not by the deadline), and the run.
        """
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        watch = _Watch(consumer)
        finished = True
        try:
            while not task.done():
                watch.look()
                if watch.joined is not None and watch.before is None and self._server is not None:
                    watch.before = await _try(scrape(self.metrics_url))
                if not stop.is_set() and (done(watch) or time.monotonic() > deadline):
                    finished = time.monotonic() <= deadline
                    stop.set()
                target = consumer.max_messages
                context.progress(
                    f"{watch.taken:,} taken" + (f" of {target:,}" if target else ""),
                    min(1.0, watch.taken / target) if target else None,
                )
                await asyncio.sleep(WATCH_S)
        finally:  # cancelled: the consumer writes its batch and leaves before the service comes back
            stop.set()
            await asyncio.wait([task], timeout=consumer.shutdown_timeout + 3.0)
        ended = time.monotonic()
        try:
            stats = await task
        except Exception:  # counted and named in the statistics
            stats = consumer.stats
        after = await _try(scrape(self.metrics_url)) if self._server is not None else None
        return finished, _Consumption(stats, watch.joined, watch.before, after, ended)

    async def _reading(self, run: _Consumption, context: StepContext) -> MetricsReading:
        """From Prometheus when it is ready and has scraped the whole run, else from the two scrapes."""
        prometheus = Prometheus(self.env.endpoints.prometheus_url)
        why = "Prometheus is not part of this stack"
        if self.env.service_configured("prometheus"):
            why = f"Prometheus at {prometheus.url} is not ready"
            if await prometheus.ready():
                context.progress("waiting for Prometheus to scrape the run")
                reading = await _from_prometheus(prometheus, run)
                if isinstance(reading, MetricsReading):
                    return reading
                why = reading
        return _from_scrapes(run, why)

    def _lake_state(self) -> LakeState:
        return _lake_state(open_trades_table(self.env.layout))

    def _ids_in_table(self, table: Table) -> list[str]:
        """The message ids in the table among the run's, read only from its time span."""
        first, last = min(t.timestamp for t in self.trades), max(t.timestamp for t in self.trades)
        wanted = And(
            GreaterThanOrEqual("timestamp", first),
            LessThanOrEqual("timestamp", last),
            In("message_id", [t.message_id for t in self.trades]),
        )
        scan = table.scan(row_filter=wanted, selected_fields=("message_id",))
        return [str(i) for i in scan.to_arrow().column("message_id").to_pylist()]

    def _dlq_state(self) -> DlqState:
        unreadable: list[UnreadableLine] = []
        ids = {d.id for d in read_dead_letters(self.env.dlq_directory, on_unreadable=unreadable.append)}
        return DlqState(frozenset(ids), frozenset(str(line) for line in unreadable))

    def _new_letters(self) -> list[DeadLetter]:
        seen = set(self.dlq_before.ids)
        letters = []
        for letter in read_dead_letters(self.env.dlq_directory):
            if letter.id not in seen:
                seen.add(letter.id)
                letters.append(letter)
        return letters


def consumer_procedure(env: ValidationEnv, options: ConsumerOptions) -> Procedure:
    return ConsumerValidation(env, options).procedure()


class _Watch:
    """What is seen of a running consumer from outside: when it joined, how much it took."""

    def __init__(self, consumer: IcebergConsumer) -> None:
        self.consumer = consumer
        self.joined: float | None = None
        self.before: Scrape | None = None
        self.taken = 0
        self.changed = time.monotonic()

    def look(self) -> None:
        taken = self.consumer.stats.consumed + self.consumer.pending
        if taken != self.taken:
            self.taken, self.changed = taken, time.monotonic()
        if self.joined is None and self.consumer.assignment:
            self.joined = self.changed = time.monotonic()


def _caught_up(watch: _Watch) -> bool:
    """Joined, nothing pending, and nothing new for a while: the backlog is written."""
    quiet = time.monotonic() - watch.changed > DRAIN_QUIET_S
    return watch.joined is not None and quiet and watch.consumer.pending == 0


async def _try(scraping: Awaitable[Scrape]) -> Scrape | None:
    try:
        return await scraping
    except MetricsUnavailableError:
        return None


def _lake_state(table: Table) -> LakeState:
    ids = tuple(s.snapshot_id for s in table.metadata.snapshots)
    snapshot = table.current_snapshot()
    if snapshot is None:
        return LakeState(ids, 0)
    total = snapshot.summary.additional_properties.get("total-records") if snapshot.summary else None
    return LakeState(ids, None if total is None else int(total))


def _letter(letter: DeadLetter) -> Letter:
    try:
        size: int | None = len(letter.raw_bytes())
    except ValueError:  # not base64
        size = None
    return Letter(letter.id, letter.reason, letter.position, size)


async def _from_prometheus(prometheus: Prometheus, run: _Consumption) -> MetricsReading | str:
    """The seed's two PromQL queries (and memory) over the run's window; a reason when it lags behind."""
    job = '{job="consumer"}'
    consumed = float(run.stats.consumed)
    deadline = time.monotonic() + PROMETHEUS_CATCH_UP_S
    try:
        while await prometheus.value(f"sum(k2_messages_consumed_total{job})") != consumed:
            if time.monotonic() > deadline:
                return f"Prometheus had not scraped the run's last figures within {PROMETHEUS_CATCH_UP_S:g} s"
            await asyncio.sleep(0.5)
        start = run.joined if run.joined is not None else run.stats.started
        window = f"{math.ceil(time.monotonic() - start + 1.0)}s"
        queries = {
            "throughput": f"sum(rate(k2_messages_consumed_total{job}[{window}]))",
            "p99": "histogram_quantile(0.99, sum by (le) "
            f"(rate(k2_iceberg_write_duration_seconds_bucket{job}[{window}])))",
            "memory": f"max(process_resident_memory_bytes{job})",
            "batched": f"sum(increase(k2_batch_size_sum{job}[{window}]))",
            "batches": f"sum(increase(k2_batch_size_count{job}[{window}]))",
        }
        values = {name: await prometheus.value(q) for name, q in queries.items()}
    except MetricsUnavailableError as error:
        return str(error)
    return MetricsReading(
        f"Prometheus (job consumer, window {window}: the run from joining the group, the seed's 5m "
        "window scaled to it)",
        values["throughput"],
        values["p99"],
        values["memory"],
        values["batches"],
        values["batched"],
        {
            "throughput": queries["throughput"],
            "p99": queries["p99"],
            "memory": queries["memory"],
            "batch": f"{queries['batched']} / {queries['batches']}",
        },
    )


def _from_scrapes(run: _Consumption, why: str) -> MetricsReading:
    """Rates and the p99 from the consumer's /metrics before (at joining) and after the run."""
    source = f"/metrics scrapes before and after the run ({why})"
    before, after = run.before, run.after
    if before is None or after is None:
        return MetricsReading(f"{source}: the /metrics page could not be read", None, None, None, None, None)
    seconds = after.taken - before.taken
    return MetricsReading(
        source,
        rate(before, after, "k2_messages_consumed_total"),
        histogram_quantile(0.99, bucket_delta(before, after, "k2_iceberg_write_duration_seconds")),
        after.total("process_resident_memory_bytes"),
        _delta(before, after, "k2_batch_size_count"),
        _delta(before, after, "k2_batch_size_sum"),
        {
            "throughput": f"k2_messages_consumed_total: increase over the {seconds:.1f} s between scrapes",
            "p99": "k2_iceberg_write_duration_seconds: p99 of the bucket increases between scrapes",
            "memory": f"process_resident_memory_bytes of {after.url}",
            "batch": "k2_batch_size: increase of _sum over increase of _count between scrapes",
        },
    )


def _delta(before: Scrape, after: Scrape, name: str) -> float | None:
    first, last = before.total(name), after.total(name)
    return None if first is None or last is None else last - first
