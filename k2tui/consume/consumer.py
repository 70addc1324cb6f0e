"""Kafka → Iceberg, exactly once.

Where to start reading comes from Iceberg: on every assignment the consumer seeks each partition to
the later of the offset recorded in the table's newest snapshot (written atomically with the data) and
the group's Kafka commit (which also covers batches that held only dead letters or duplicates). The
Kafka commit follows each append. So a crash before an append loses nothing (the batch is read again),
and a crash between an append and the Kafka commit doubles nothing (Iceberg's offset is ahead).

The lake and the registry each sit behind a circuit breaker. While either holds work back, fetching is
paused (the group membership stays alive) and no offset moves; nothing is skipped or dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import operator
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
import pyarrow as pa
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from pyiceberg.table import Table

from k2tui.consume.crash import CrashPlan, CrashPoint
from k2tui.consume.memory import release_freed_memory
from k2tui.consume.metrics import ConsumerMetrics
from k2tui.consume.recent import IdSet, first_occurrences, uuid_keys
from k2tui.consume.resilience import (
    TRANSIENT_KAFKA_ERRORS,
    TRANSIENT_LAKE_ERRORS,
    TRANSIENT_REGISTRY_ERRORS,
    CircuitBreaker,
)
from k2tui.consume.sequence import SequenceTracker
from k2tui.consume.writer import AppendResult, LakeWriter, StaleBatchError
from k2tui.ingest.dlq import DeadLetterQueue
from k2tui.ingest.producer import ensure_topics
from k2tui.ingest.stats import percentile
from k2tui.model.blocks import BlockDecodeError, V2BlockDecoder
from k2tui.model.columnar import CheckedBatch, check_batch, check_block
from k2tui.model.schema import decodes_as_v2
from k2tui.model.trade import TradeV2
from k2tui.model.validation import Violation, validate
from k2tui.model.wire import HEADER_SIZE, MAGIC_BYTE, AvroDecoder, WireErrorKind, WireFormatError
from k2tui.stack.registry.client import RegistryClient, RegistryUnavailableError

GROUP = "k2-iceberg-writer-crypto-v2"
RECENT_MESSAGE_IDS = 200_000
UNKNOWN_SCHEMA_LOOKUPS = 3
"""Lookups of a schema id the registry does not know before its messages go to the DLQ."""
CHECK_CHUNK = 2000
"""Messages fetched, decoded and checked together: bounds the records held at once. With 20,000-row
batches, peak RSS 321 MB checking whole fetches, 297 MB in chunks of 5,000, 280–289 MB of 2,000."""
KAFKA_COMMIT_TIMEOUT = 5.0
LOG_END = -1
"""A new group's start without --from-beginning: the high watermark of the first fetch (tansu's
ListOffsets reports the log end wrongly, a fetch's high watermark rightly)."""
LEAVE_GROUP_TIMEOUT = 2.0
FETCH_MAX_WAIT_MS = 100
"""How long the broker may hold a fetch. tansu answers a fetch only when the wait is over, even with
records in hand (it reads, then sleeps out the wait), and reads again when the first read found
nothing, so at aiokafka's 500 ms a trade waited up to half a second in the broker. `k2tui bench
freshness`, four runs each: p99 2,705–3,299 ms at 500, 1,539–2,417 ms at 100 (1,830–2,189 at 200,
2,017–2,032 at 50, where the extra empty reads cost more than they save). `k2tui bench consumer`,
alternating: (b) 45,101–59,431 msg/s at 100 against 35,605–44,141 at 500; (a) and the ceiling alike."""

log = logging.getLogger(__name__)
T = TypeVar("T")
Fetched = tuple[TopicPartition, ConsumerRecord[bytes, bytes]]
Decoded = tuple[TopicPartition, ConsumerRecord[bytes, bytes], dict[str, Any] | None]
"""A fetched message and its record as the v2 types, or None when it was dead-lettered."""


@dataclass
class ConsumerStats:
    consumed: int = 0
    written: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    errors: int = 0
    """Unhandled errors that ended the run (messages refused into the DLQ are counted apart)."""
    last_error: str = ""
    transient_errors: int = 0
    """Failures of the lake, registry or Kafka that were retried, not lost."""
    sequence_gaps: int = 0
    snapshots: int = 0
    started: float = field(default_factory=time.monotonic)
    first_fetched: float | None = None
    """When the first message arrived: sustained throughput leaves out start-up and the group join."""
    last_flushed: float | None = None
    commit_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=4096))

    @property
    def accounted(self) -> bool:
        """Every consumed message was written, dead-lettered or dropped as a duplicate."""
        return self.consumed == self.written + self.dead_lettered + self.duplicates

    def commit_p99(self) -> float | None:
        return percentile(self.commit_seconds, 0.99)

    def commit_p50(self) -> float | None:
        return percentile(self.commit_seconds, 0.50)

    def sustained_rate(self) -> float | None:
        """Messages a second from the first fetched to the last flushed, or None before a flush."""
        if self.first_fetched is None or self.last_flushed is None or self.last_flushed <= self.first_fetched:
            return None
        return self.consumed / (self.last_flushed - self.first_fetched)


@dataclass
class _Unflushed:
    """What was taken since the last flush; it counts in the statistics once the flush lands."""

    consumed: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    rows: int = 0
    """Rows to write: the checked, new records in `tables`."""
    tables: list[pa.Table] = field(default_factory=list)
    ids: IdSet = field(default_factory=IdSet)
    topics: Counter[str] = field(default_factory=Counter)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    first_offsets: dict[TopicPartition, int] = field(default_factory=dict)


class Maintenance(Protocol):
    """Lake upkeep the consumer runs between batches (the lake layer's MaintenanceSchedule)."""

    def due(self) -> bool: ...

    def run_due(self, table: Table) -> object: ...

    def stop(self) -> None:
        """Make a run in progress give up before it commits."""


class _Seeker(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: IcebergConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.owner.hand_over()

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self.owner.seek_to_recorded(assigned)


def _partition_runs(fetched: list[Fetched]) -> list[tuple[TopicPartition, int, int]]:
    """Each stretch of `fetched` from one partition, as (partition, start, end): a few per fetch, so
    the per-partition bookkeeping is not done message by message."""
    runs: list[tuple[TopicPartition, int, int]] = []
    start = 0
    for tp, group in itertools.groupby(fetched, key=operator.itemgetter(0)):
        end = start + sum(1 for _ in group)
        runs.append((tp, start, end))
        start = end
    return runs


async def in_daemon_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking lake work off the loop in a daemon thread, so a hung store never blocks exit.

    A lost thread is safe: an append lands with its offsets or not at all.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the awaiting coroutine was cancelled
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def work() -> None:
        outcome: tuple[Any, BaseException | None]
        try:
            outcome = (function(*args), None)
        except BaseException as error:  # handed to the awaiting coroutine
            outcome = (None, error)
        with contextlib.suppress(RuntimeError):  # the loop closed while this thread was stuck
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=work, name="k2-lake", daemon=True).start()
    return await future


class IcebergConsumer:
    def __init__(
        self,
        *,
        bootstrap: str,
        registry_url: str,
        table: Table,
        topics: Sequence[str],
        dlq: DeadLetterQueue,
        group: str = GROUP,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_messages: int | None = None,
        from_beginning: bool = False,
        idle_stop: float | None = None,
        shutdown_timeout: float = 7.0,
        metrics: ConsumerMetrics | None = None,
        on_event: Callable[[str], None] | None = None,
        crash: CrashPlan | None = None,
        topic_partitions: int | None = None,
        large_gap: int = 1000,
        maintenance: Maintenance | None = None,
    ) -> None:
        """`topic_partitions`: create missing topics with this many partitions before subscribing."""
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.group = group
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_messages = max_messages
        self.offset_reset = "earliest" if from_beginning else "latest"
        self.idle_stop = idle_stop
        self.shutdown_timeout = shutdown_timeout
        self.crash = crash
        self.topic_partitions = topic_partitions
        self.maintenance = maintenance
        self.dlq = dlq
        self.on_event = on_event or (lambda message: None)
        self.stats = ConsumerStats()
        self.metrics = metrics or ConsumerMetrics()
        self.lake_breaker = CircuitBreaker("lake", on_change=self._breaker_changed)
        self.registry_breaker = CircuitBreaker("registry", on_change=self._breaker_changed)
        for breaker in (self.lake_breaker, self.registry_breaker):
            self.metrics.breaker_state.labels(breaker.dependency).set(breaker.state)
        self.sequences = SequenceTracker(large_gap=large_gap)
        self._writer = LakeWriter(table, group)
        self._registry = RegistryClient(registry_url)
        self._decoder = AvroDecoder(self._registry)
        self._blocks = V2BlockDecoder()
        self._unknown_schema_lookups: Counter[int] = Counter()
        self._v2_schema_ids: dict[int, bool] = {}
        """Per writer schema id, whether it decodes to the v2 field types (the column checks need them)."""
        self._unsought: set[TopicPartition] = set()
        """Assigned partitions whose start offset is not read from the lake yet (they stay paused)."""
        self._inbox: deque[Fetched] = deque()
        self._unflushed = _Unflushed()
        self._uncommitted: dict[TopicPartition, int] = {}
        self._written_next: dict[TopicPartition, int] = {}
        self._recent_ids = IdSet(RECENT_MESSAGE_IDS)
        self._consumer: AIOKafkaConsumer | None = None
        self._last_flush = time.monotonic()
        self._last_message = time.monotonic()
        self._flushes_with_records = 0
        self._lock = asyncio.Lock()
        """Taking and flushing versus a rebalance, which aiokafka runs concurrently with this loop."""
        self._fetched_to: dict[TopicPartition, int] = {}
        """Per partition, the offset the next record must have at least (LOG_END: not known yet)."""
        self._seeks: Counter[TopicPartition] = Counter()
        """Seeks per partition: records fetched before the latest one are stale."""
        self._fetched_again: dict[TopicPartition, int] = {}
        """Partitions sought again where they stand after a fetch started elsewhere: the seek count then."""

    async def run(self, stop: asyncio.Event) -> ConsumerStats:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset=self.offset_reset,  # only where neither Iceberg nor Kafka has an offset
            session_timeout_ms=6_000,  # tansu completes a join after half of it
            heartbeat_interval_ms=1_000,
            max_poll_records=self.batch_size,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self._consumer = consumer
        try:
            if self.topic_partitions is not None:
                await ensure_topics(self.bootstrap, self.topics, self.topic_partitions)
            consumer.subscribe(self.topics, listener=_Seeker(self))
            await consumer.start()
            while not stop.is_set() and not self._enough():
                self._hold_fetching_while_blocked(consumer)
                seeks = self._seeks.copy()
                bite = max(1, min(self._room(), CHECK_CHUNK))
                polled = await consumer.getmany(timeout_ms=self._wait_ms(), max_records=bite)
                async with self._lock:
                    self._accept(polled, seeks)
                    if self._unsought:
                        await self._seek_unsought()
                    await self._drain_inbox()
                    self._measure_lag(consumer)
                    if self._flush_due():
                        await self._try_flush()
                        await self._maintain()
            await self._shut_down()
        except Exception as error:
            # Unhandled: counted and named for the statistics block, then raised. Nothing after the last
            # append is committed, so a restart resumes from what Iceberg recorded.
            self.stats.errors += 1
            self.stats.last_error = f"{type(error).__name__}: {error}"
            raise
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), LEAVE_GROUP_TIMEOUT)
            self._registry.close()
        return self.stats

    def _accept(
        self,
        polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        seeks_then: Counter[TopicPartition],
    ) -> None:
        """Queue fetched records that continue where their partition was sought or last fetched.

        aiokafka rebalances concurrently with this loop, so a fetch may return records from elsewhere
        than a seek made while it was under way (`seeks_then` counts the seeks when it began); they are
        dropped, and the position the seek set fetches them again if they are due. A fetch that starts
        elsewhere with no seek in between is dropped too (aiokafka's position can have moved past
        records dropped that way), and the partition sought again where it stands. If the fetch from
        there still starts later, the offsets between hold no record (tansu leaves some after a
        restart, Kafka after transactions and compaction): it is taken, as waiting would stall the
        partition for good.
        """
        consumer = self._consumer
        assert consumer is not None
        for tp, expected in list(self._fetched_to.items()):
            if expected == LOG_END and (end := consumer.highwater(tp)) is not None:
                self._seek_to(tp, end)
                self.on_event(f"{tp.topic}[{tp.partition}] starts at the log end, {end}")
        assignment = consumer.assignment()
        for tp, messages in polled.items():
            if not messages or tp not in assignment or tp in self._unsought or tp not in self._fetched_to:
                continue
            expected, first = self._fetched_to[tp], messages[0].offset
            if expected == LOG_END:
                continue
            if first != expected:
                if self._seeks[tp] != seeks_then[tp]:
                    continue  # fetched from before a seek made while it was under way
                # Only a fetch from our own seek again, with no seek since, shows the offsets are empty.
                if first < expected or self._fetched_again.get(tp) != self._seeks[tp]:
                    self._seek_to(tp, expected)
                    self._fetched_again[tp] = self._seeks[tp]
                    continue
                self.on_event(
                    f"{tp.topic}[{tp.partition}] holds no record at offsets {expected}..{first - 1}; "
                    f"going on from {first}"
                )
            self._fetched_again.pop(tp, None)
            self._inbox.extend((tp, message) for message in messages)
            self._fetched_to[tp] = messages[-1].offset + 1
            if self.stats.first_fetched is None:
                self.stats.first_fetched = time.monotonic()

    def _seek_to(self, tp: TopicPartition, offset: int) -> None:
        assert self._consumer is not None
        self._consumer.seek(tp, offset)
        self._expect(tp, offset)

    def _expect(self, tp: TopicPartition, offset: int) -> None:
        """After a seek: where the next record of `tp` starts; what was fetched before it is stale."""
        self._fetched_to[tp] = offset
        self._seeks[tp] += 1

    @property
    def assignment(self) -> set[TopicPartition]:
        """The partitions this member owns now (empty before it joins its group)."""
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    @property
    def pending(self) -> int:
        """Messages fetched but not yet written: bounded by the batch size, empty after each flush."""
        return len(self._inbox) + self._unflushed.consumed

    @property
    def blocked(self) -> bool:
        """A dependency holds work back: fetch nothing more until it is written."""
        return bool(self._inbox or self._unsought) or self.lake_breaker.failures > 0 or self._room() == 0

    def _hold_fetching_while_blocked(self, consumer: AIOKafkaConsumer) -> None:
        if self.blocked:
            consumer.pause(*consumer.assignment())
        elif paused := consumer.paused():
            consumer.resume(*paused)

    def _wait_ms(self) -> int:
        if self.blocked:
            waits = [b.waiting() for b in (self.lake_breaker, self.registry_breaker) if b.failures]
            return max(10, min(500, int(min(waits, default=0.1) * 1000)))
        to_flush = self._last_flush + self.flush_interval - time.monotonic()
        return max(1, min(500, int(to_flush * 1000)))

    def _room(self) -> int:
        room = self.batch_size - self._unflushed.rows
        if self.max_messages is not None:
            room = min(room, self.max_messages - self._consumed_so_far())
        return max(0, room)

    def _consumed_so_far(self) -> int:
        return self.stats.consumed + self._unflushed.consumed + len(self._inbox)

    def _enough(self) -> bool:
        if self.idle_stop is not None and time.monotonic() - self._last_message > self.idle_stop:
            return True
        return self.max_messages is not None and self._consumed_so_far() >= self.max_messages

    def _flush_due(self) -> bool:
        if self.lake_breaker.failures:
            return self.lake_breaker.waiting() == 0
        return (
            self._unflushed.rows >= self.batch_size
            or time.monotonic() - self._last_flush >= self.flush_interval
        )

    def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Log end (the fetch's high watermark, which tansu reports right) minus the next offset to write."""
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            written = self._written_next.get(tp)
            if end is not None and written is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, end - written))

    def _breaker_changed(self, breaker: CircuitBreaker) -> None:
        self.metrics.breaker_state.labels(breaker.dependency).set(breaker.state)
        detail = f" after {breaker.last_error}" if breaker.last_error else ""
        self.on_event(f"circuit breaker for the {breaker.dependency} is {breaker.state.label}{detail}")

    def _transient(self, breaker: CircuitBreaker, error: BaseException) -> None:
        breaker.failed(error)
        self.stats.transient_errors += 1
        self.metrics.errors.labels(f"{breaker.dependency}_unavailable").inc()
        self.on_event(
            f"{breaker.dependency} unavailable ({type(error).__name__}: {error}); "
            f"retry {breaker.failures} in {breaker.waiting():.1f} s"
        )

    async def seek_to_recorded(self, assigned: Sequence[TopicPartition]) -> None:
        """Start each partition at the later of Iceberg's recorded offset and the group's Kafka commit.

        Until the lake answers, the partitions stay paused: starting from Kafka's commit alone could
        write again what the lake already holds.
        """
        async with self._lock:
            self._unsought.update(assigned)
            await self._seek_unsought()

    async def _seek_unsought(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        if self.lake_breaker.failures and not self.lake_breaker.allows():
            return
        try:
            recorded = await in_daemon_thread(self._writer.offsets)
        except TRANSIENT_LAKE_ERRORS as error:
            self._transient(self.lake_breaker, error)
            return
        self.lake_breaker.succeeded()
        for tp in sorted(self._unsought & consumer.assignment()):
            in_lake = recorded.get((tp.topic, tp.partition))
            try:
                in_kafka = await consumer.committed(tp)
            except TRANSIENT_KAFKA_ERRORS:
                return  # the broker is away; tried again on the next pass
            start = max((o for o in (in_lake, in_kafka) if o is not None), default=None)
            if start is not None:
                consumer.seek(tp, start)
                self._written_next[tp] = start
                if start != in_kafka:  # Kafka's commit lags the lake (a crash before it): catch it up
                    self._uncommitted[tp] = start
                self.on_event(
                    f"{tp.topic}[{tp.partition}] starts at {start} (lake {in_lake}, Kafka {in_kafka})"
                )
            else:  # a new group: from the beginning, or from the log end as the first fetch reports it
                await consumer.seek_to_beginning(tp)
                start = await consumer.position(tp) if self.offset_reset == "earliest" else LOG_END
            self._expect(tp, start)
            self._unsought.discard(tp)
        self._unsought &= consumer.assignment()
        if self._uncommitted:
            await self._commit_to_kafka({})

    async def hand_over(self) -> None:
        """Before partitions move to another member: write what was taken, or forget it.

        Forgetting is safe: the next owner starts at the offsets Iceberg recorded, so the messages are
        read again, by it or by us.
        """
        async with self._lock:
            self._inbox.clear()
            self._fetched_to.clear()  # every partition is sought again on assignment
            try:
                await self.flush()
            except TRANSIENT_LAKE_ERRORS as error:
                self._transient(self.lake_breaker, error)
                self.on_event(f"lake down at a rebalance: {self._unflushed.consumed} messages to read again")
                self._unflushed = _Unflushed()
            self._uncommitted.clear()  # the next owner's commits supersede ours

    async def _drain_inbox(self) -> None:
        """Decode what was fetched and check it a chunk at a time; stops where the registry fails."""
        if self._inbox and self.registry_breaker.failures and not self.registry_breaker.allows():
            return
        while self._inbox:
            together = self._take_together()
            if together:
                continue
            # Alone: a message whose schema id is not known yet (it is looked up, and the ones after it
            # can then go together), or one that does not decode even on its own.
            chunk = (
                CHECK_CHUNK if together is None and self._decoder.knows(self._inbox[0][1].value or b"") else 1
            )
            decoded: list[Decoded] = []
            try:
                while self._inbox and len(decoded) < chunk:
                    tp, message = self._inbox[0]
                    decoded.append((tp, message, await self._decode(tp, message)))
                    self._inbox.popleft()
            except TRANSIENT_REGISTRY_ERRORS as error:
                self._take_decoded(decoded)
                self._transient(self.registry_breaker, error)
                return
            self._take_decoded(decoded)
        self.registry_breaker.succeeded()

    def _take_together(self) -> int | None:
        """Decode the v2 messages at the head of the inbox in one call (`V2BlockDecoder`) and take them.

        Returns how many were taken: None where the head is not v2 of a known schema id (those go
        message by message, in chunks). Where the call fails, the first half is tried, and so on, so
        a message that does not decode costs its neighbours nothing; 0 when it is the head itself.
        """
        head = self._inbox[0][1].value or b""
        header = head[:HEADER_SIZE]
        if len(header) < HEADER_SIZE or header[0] != MAGIC_BYTE or not self._decoder.knows(head):
            return None
        if not self._decodes_as_v2(int.from_bytes(header[1:], "big")):
            return None
        run = list(
            itertools.takewhile(
                lambda fetched: (fetched[1].value or b"")[:HEADER_SIZE] == header,
                itertools.islice(self._inbox, CHECK_CHUNK),
            )
        )
        while run:
            try:
                block = self._blocks.decode([(message.value or b"")[HEADER_SIZE:] for _, message in run])
            except BlockDecodeError:
                run = run[: len(run) // 2]
                continue
            for _ in run:
                self._inbox.popleft()
            self._take(run, run, check_block(block))
            return len(run)
        return 0

    def _take_decoded(self, decoded: list[Decoded]) -> None:
        """Take messages decoded one by one (None: dead-lettered already)."""
        checkable = [(tp, message, datum) for tp, message, datum in decoded if datum is not None]
        checked = check_batch([datum for _, _, datum in checkable]) if checkable else None
        self._take(
            [(tp, message) for tp, message, _ in decoded],
            [(tp, message) for tp, message, _ in checkable],
            checked,
        )

    def _take(self, fetched: list[Fetched], checkable: list[Fetched], checked: CheckedBatch | None) -> None:
        """Count the messages, dead-letter what breaks the v2 rules, drop duplicates, batch the rest.

        `checkable` are the `fetched` not dead-lettered yet, in order, and `checked` their rows.
        """
        if not fetched:
            return
        unflushed = self._unflushed
        consumed: Counter[str] = Counter()
        fetched_runs = _partition_runs(fetched)
        for tp, start, end in fetched_runs:
            unflushed.next_offsets[tp] = fetched[end - 1][1].offset + 1
            unflushed.first_offsets.setdefault(tp, fetched[start][1].offset)
            consumed[tp.topic] += end - start
        unflushed.consumed += len(fetched)
        unflushed.dead_lettered += len(fetched) - len(checkable)
        for topic, count in consumed.items():
            self.metrics.consumed.labels(topic).inc(count)
        self._last_message = time.monotonic()
        if checked is None:
            return
        table, violations = checked.table, checked.violations
        for row in sorted(violations):
            tp, message = checkable[row]
            self._refuse(tp, message, violations[row], checked.datum_at(row))
        unflushed.dead_lettered += len(violations)
        passed = np.ones(len(checkable), bool)
        passed[list(violations)] = False
        keys = uuid_keys(table.column("message_id"))
        new = passed & ~unflushed.ids.contains(keys) & ~self._recent_ids.contains(keys)
        new[new] = first_occurrences(keys.select(new))
        unflushed.duplicates += int(passed.sum() - new.sum())
        unflushed.ids.add(keys.select(new))
        # Taken together (nearly always), `checkable` is `fetched` itself: its stretches are known.
        for tp, start, end in fetched_runs if checkable is fetched else _partition_runs(checkable):
            unflushed.topics[tp.topic] += int(new[start:end].sum())
        rows = table if new.all() else table.filter(new)
        columns = (rows.column(name) for name in ("exchange", "symbol", "sequence_number"))
        for gap in self.sequences.gaps_in_columns(*columns):
            self.stats.sequence_gaps += 1
            self.metrics.gaps.labels(gap.exchange, gap.symbol).inc()
            log.warning("sequence %s", gap.describe())
        if rows.num_rows:
            unflushed.tables.append(rows)
            unflushed.rows += rows.num_rows

    async def _decode(
        self, tp: TopicPartition, message: ConsumerRecord[bytes, bytes]
    ) -> dict[str, Any] | None:
        """The record as the v2 types, or None once it is dead-lettered; raises only when the registry
        cannot be reached.

        A writer schema other than v2 is checked here, row by row, and a record that passes is retyped.
        """
        raw: bytes = message.value or b""
        try:
            if self._decoder.knows(raw):
                decoded = self._decoder.decode(raw)
            else:  # a registry lookup: off the loop, so heartbeats go on while it waits
                decoded = await asyncio.to_thread(self._decoder.decode, raw)
        except WireFormatError as error:
            if error.kind is WireErrorKind.UNKNOWN_SCHEMA and self._lookup_again(error.schema_id):
                raise RegistryUnavailableError(f"{error.reason}; asking again before the DLQ") from error
            self._dead_letter(tp, message, f"{error.kind.value}: {error.reason}", "WireFormatError", None)
            return None
        if self._decodes_as_v2(decoded.schema_id):
            return decoded.datum  # type: ignore[no-any-return]
        violations = validate(decoded.datum)
        if violations:
            self._refuse(tp, message, violations, decoded.datum)
            return None
        return TradeV2.from_avro(decoded.datum).to_avro()

    def _decodes_as_v2(self, schema_id: int) -> bool:
        known = self._v2_schema_ids.get(schema_id)
        if known is None:
            known = self._v2_schema_ids[schema_id] = decodes_as_v2(self._decoder.writer_schema(schema_id))
        return known

    def _lookup_again(self, schema_id: int | None) -> bool:
        """An unknown schema id is asked for a few times (a registry restored late) before it is permanent."""
        if schema_id is None or self._unknown_schema_lookups[schema_id] >= UNKNOWN_SCHEMA_LOOKUPS:
            return False
        self._unknown_schema_lookups[schema_id] += 1
        return True

    def _refuse(
        self,
        tp: TopicPartition,
        message: ConsumerRecord[bytes, bytes],
        violations: list[Violation],
        datum: Any,
    ) -> None:
        reason = "; ".join(str(v) for v in violations)
        self._dead_letter(tp, message, f"breaks the v2 rules: {reason}", "ValidationError", datum)

    def _dead_letter(
        self, tp: TopicPartition, message: ConsumerRecord[bytes, bytes], reason: str, kind: str, datum: Any
    ) -> None:
        self.metrics.dead_letters.labels(kind).inc()
        self.metrics.errors.labels(kind).inc()
        self.dlq.put(
            reason,
            message.value or b"",
            error_type=kind,
            topic=tp.topic,
            partition=tp.partition,
            offset=message.offset,
            key=message.key,
            kafka_timestamp_ms=message.timestamp,
            trade_time_us=datum.get("timestamp") if isinstance(datum, dict) else None,
            decoded=datum,
        )

    async def _maintain(self) -> None:
        """Expire and compact when due, between batches and never while the lake is failing.

        Inline on purpose: nothing is appended meanwhile, so the compaction's commit cannot lose a race.
        """
        if self.maintenance is None or self.lake_breaker.failures or not self.maintenance.due():
            return
        run = await in_daemon_thread(self.maintenance.run_due, self._writer.table)
        self.on_event(f"lake maintenance: {run}")
        try:
            await in_daemon_thread(self._writer.table.refresh)  # the next append builds on what it left
        except TRANSIENT_LAKE_ERRORS as error:  # the next append meets it too, behind the breaker
            self.on_event(f"lake unavailable after maintenance: {type(error).__name__}")

    async def _try_flush(self) -> None:
        if not self._unflushed.rows:  # only a Kafka commit, the lake is not involved
            await self.flush()
            return
        if self.lake_breaker.failures and not self.lake_breaker.allows():
            return
        try:
            await self.flush()
        except TRANSIENT_LAKE_ERRORS as error:
            self._transient(self.lake_breaker, error)
            return
        self.lake_breaker.succeeded()
        release_freed_memory()  # the batch just written is garbage now; glibc would keep its pages

    async def flush(self) -> None:
        """Append the batch with its offsets (if it has records), then commit the offsets to Kafka.

        Raises a transient lake error with the batch kept, to be tried again.
        """
        self._last_flush = time.monotonic()
        unflushed = self._unflushed
        if not unflushed.next_offsets:  # nothing consumed since the last flush
            return
        offsets = {(tp.topic, tp.partition): offset for tp, offset in unflushed.next_offsets.items()}
        if unflushed.rows:
            self._flushes_with_records += 1
            self._crash_if_planned(CrashPoint.BEFORE_APPEND)
            starts = {(tp.topic, tp.partition): offset for tp, offset in unflushed.first_offsets.items()}
            try:
                batch = pa.concat_tables(unflushed.tables)
                result = await in_daemon_thread(self._writer.append, batch, offsets, starts)
            except StaleBatchError as error:
                self._drop_stale(error)
                return
            self._crash_if_planned(CrashPoint.AFTER_APPEND)
            self._count_append(result, unflushed)
        self.stats.consumed += unflushed.consumed
        self.stats.dead_lettered += unflushed.dead_lettered
        self.stats.duplicates += unflushed.duplicates
        self._unflushed = _Unflushed()
        self._written_next.update(unflushed.next_offsets)
        await self._commit_to_kafka(unflushed.next_offsets)
        self.stats.last_flushed = time.monotonic()
        if unflushed.rows:
            self._crash_if_planned(CrashPoint.AFTER_COMMIT)

    def _drop_stale(self, error: StaleBatchError) -> None:
        """Another member wrote these partitions (they moved while this one was cut off): re-seek them."""
        taken = set(self._unflushed.next_offsets) | {tp for tp, _ in self._inbox}
        partitions = taken & self.assignment
        self.on_event(f"batch dropped, {error}; {len(partitions)} partitions start again from the lake")
        self._unflushed = _Unflushed()
        self._inbox.clear()
        self._unsought.update(partitions)

    def _count_append(self, result: AppendResult, unflushed: _Unflushed) -> None:
        self.stats.written += result.records
        if result.already_written:
            self.on_event(f"{result.records} records were already in the lake (an attempt in doubt landed)")
        else:
            self.stats.snapshots += 1
        self.stats.commit_seconds.append(result.seconds)
        self.metrics.write_seconds.observe(result.seconds)
        self.metrics.batch_size.observe(result.records)
        for topic, count in unflushed.topics.items():
            self.metrics.written.labels(topic).inc(count)
        self._recent_ids.update(unflushed.ids)

    async def _commit_to_kafka(self, next_offsets: dict[TopicPartition, int]) -> None:
        """A convenience after the append (Iceberg holds the truth), so a failure is retried next time."""
        assert self._consumer is not None
        self._uncommitted.update(next_offsets)
        owned = self._consumer.assignment()
        offsets = {tp: OffsetAndMetadata(o, "") for tp, o in self._uncommitted.items() if tp in owned}
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), KAFKA_COMMIT_TIMEOUT)
        except TRANSIENT_KAFKA_ERRORS as error:
            self.stats.transient_errors += 1
            self.metrics.errors.labels("kafka_commit").inc()
            self.on_event(f"Kafka offset commit failed, kept for the next one: {type(error).__name__}")
            return
        self._uncommitted.clear()
        self._measure_lag(self._consumer)

    def _crash_if_planned(self, point: CrashPoint) -> None:
        plan = self.crash
        if plan is not None and plan.point is point and plan.flush == self._flushes_with_records:
            log.warning("crashing at %s of flush %d as asked", point.value, plan.flush)
            os.kill(os.getpid(), signal.SIGKILL)

    async def _shut_down(self) -> None:
        """Write what was taken, within the shutdown time; what cannot be written is read again later."""
        if self.maintenance is not None:
            self.maintenance.stop()
        deadline = time.monotonic() + self.shutdown_timeout
        while time.monotonic() < deadline:
            async with self._lock:
                await self._drain_inbox()
                if not self._inbox:
                    try:
                        await asyncio.wait_for(self.flush(), max(0.1, deadline - time.monotonic()))
                        return
                    except (TimeoutError, *TRANSIENT_LAKE_ERRORS) as error:
                        self._transient(self.lake_breaker, error)
            waiting = max(b.waiting() for b in (self.lake_breaker, self.registry_breaker))
            await asyncio.sleep(min(0.2, waiting, max(0.0, deadline - time.monotonic())))
        self.on_event(
            f"stopped with {self._unflushed.consumed + len(self._inbox)} messages unwritten; "
            "they are read again on the next start"
        )
