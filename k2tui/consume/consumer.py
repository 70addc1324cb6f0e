"""Kafka → Iceberg, exactly once.

Where to start reading comes from Iceberg: on every assignment the consumer seeks each partition to
the later of the offset recorded in the table's newest snapshot (written atomically with the data) and
the group's Kafka commit (which also covers batches that held only dead letters or duplicates). The
Kafka commit follows each append. So a crash before an append loses nothing (the batch is read again),
and a crash between an append and the Kafka commit doubles nothing (Iceberg's offset is ahead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from pyiceberg.table import Table

from k2tui.consume.metrics import ConsumerMetrics
from k2tui.consume.sequence import GAP_KINDS, SequenceTracker
from k2tui.consume.writer import LakeWriter
from k2tui.ingest.dlq import DeadLetterQueue
from k2tui.ingest.stats import percentile
from k2tui.model.trade import TradeV2
from k2tui.model.validation import validate
from k2tui.model.wire import AvroDecoder, WireFormatError
from k2tui.stack.registry.client import RegistryClient, RegistryUnavailableError

GROUP = "k2-iceberg-writer-crypto-v2"
RECENT_MESSAGE_IDS = 200_000

log = logging.getLogger(__name__)


@dataclass
class ConsumerStats:
    consumed: int = 0
    written: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    errors: int = 0
    """Unhandled errors that ended the run (messages refused into the DLQ are counted apart)."""
    last_error: str = ""
    sequence_gaps: int = 0
    snapshots: int = 0
    started: float = field(default_factory=time.monotonic)
    commit_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=4096))

    @property
    def accounted(self) -> bool:
        """Every consumed message was written, dead-lettered or dropped as a duplicate."""
        return self.consumed == self.written + self.dead_lettered + self.duplicates

    def commit_p99(self) -> float | None:
        return percentile(self.commit_seconds, 0.99)


class _Seeker(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: IcebergConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.owner.flush()

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self.owner.seek_to_recorded(assigned)


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
        flush_interval: float = 5.0,
        max_messages: int | None = None,
        from_beginning: bool = False,
        idle_stop: float | None = None,
        metrics: ConsumerMetrics | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.group = group
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_messages = max_messages
        self.offset_reset = "earliest" if from_beginning else "latest"
        self.idle_stop = idle_stop
        self._last_message = time.monotonic()
        self.dlq = dlq
        self.on_event = on_event or (lambda message: None)
        self.stats = ConsumerStats()
        self.metrics = metrics or ConsumerMetrics()
        self._batch_topics: Counter[str] = Counter()
        self._written_next: dict[TopicPartition, int] = {}
        self.sequences = SequenceTracker()
        self._writer = LakeWriter(table, group)
        self._registry = RegistryClient(registry_url)
        self._decoder = AvroDecoder(self._registry)
        self._batch: list[TradeV2] = []
        self._batch_ids: set[str] = set()
        self._recent_ids: OrderedDict[str, None] = OrderedDict()
        self._next: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._last_flush = time.monotonic()

    async def run(self, stop: asyncio.Event) -> ConsumerStats:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset=self.offset_reset,  # only where neither Iceberg nor Kafka has an offset
            session_timeout_ms=6_000,  # tansu completes a join after half of it
            heartbeat_interval_ms=1_000,
            max_poll_records=self.batch_size,
        )
        self._consumer = consumer
        consumer.subscribe(self.topics, listener=_Seeker(self))
        try:
            await consumer.start()
            while not stop.is_set() and not self._enough():
                wait_ms = max(1, int((self._last_flush + self.flush_interval - time.monotonic()) * 1000))
                polled = await consumer.getmany(timeout_ms=min(wait_ms, 500), max_records=self._room())
                for tp, messages in polled.items():
                    for message in messages:
                        await self._take(tp, message)
                self._measure_lag(consumer)
                if (
                    len(self._batch) >= self.batch_size
                    or time.monotonic() - self._last_flush >= self.flush_interval
                ):
                    await self.flush()
            await self.flush()
        except Exception as error:
            # Unhandled: counted and named for the statistics block, then raised. Nothing after the last
            # append is committed, so a restart resumes from what Iceberg recorded.
            self.stats.errors += 1
            self.stats.last_error = f"{type(error).__name__}: {error}"
            raise
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            self._registry.close()
        return self.stats

    def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Log end (the fetch's high watermark, which tansu reports right) minus the next offset to write."""
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            written = self._written_next.get(tp)
            if end is not None and written is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, end - written))

    def _enough(self) -> bool:
        if self.idle_stop is not None and time.monotonic() - self._last_message > self.idle_stop:
            return True
        return self.max_messages is not None and self.stats.consumed >= self.max_messages

    def _room(self) -> int:
        room = self.batch_size - len(self._batch)
        if self.max_messages is not None:
            room = min(room, self.max_messages - self.stats.consumed)
        return max(1, room)

    async def seek_to_recorded(self, assigned: Sequence[TopicPartition]) -> None:
        """Start each partition at the later of Iceberg's recorded offset and the group's Kafka commit."""
        assert self._consumer is not None
        recorded = await asyncio.to_thread(self._writer.offsets)
        for tp in assigned:
            in_lake = recorded.get((tp.topic, tp.partition))
            in_kafka = await self._consumer.committed(tp)
            start = max((o for o in (in_lake, in_kafka) if o is not None), default=None)
            if start is not None:
                self._consumer.seek(tp, start)
                self.on_event(
                    f"{tp.topic}[{tp.partition}] starts at {start} (lake {in_lake}, kafka {in_kafka})"
                )

    async def _take(self, tp: TopicPartition, message: Any) -> None:
        self.stats.consumed += 1
        self.metrics.consumed.labels(tp.topic).inc()
        self._last_message = time.monotonic()
        self._next[tp] = message.offset + 1
        trade = await self._decode(tp, message)
        if trade is None:
            return
        if trade.message_id in self._batch_ids or trade.message_id in self._recent_ids:
            self.stats.duplicates += 1
            return
        if trade.sequence_number is not None:
            event = self.sequences.observe(trade.exchange.value, trade.symbol, trade.sequence_number)
            if event.kind in GAP_KINDS:
                self.stats.sequence_gaps += 1
                self.metrics.gaps.labels(event.exchange, event.symbol).inc()
                log.warning("sequence %s", event.describe())
        self._batch.append(trade)
        self._batch_ids.add(trade.message_id)
        self._batch_topics[tp.topic] += 1

    async def _decode(self, tp: TopicPartition, message: Any) -> TradeV2 | None:
        raw: bytes = message.value or b""
        while True:
            try:
                decoded = self._decoder.decode(raw)
                break
            except RegistryUnavailableError as error:  # transient: wait for the registry, never skip
                self.on_event(f"registry unavailable, retrying: {error}")
                await asyncio.sleep(1.0)
            except WireFormatError as error:
                self._dead_letter(tp, message, f"{error.kind.value}: {error.reason}", "WireFormatError", None)
                return None
        violations = validate(decoded.datum)
        if violations:
            reason = "; ".join(str(v) for v in violations)
            self._dead_letter(tp, message, f"breaks the v2 rules: {reason}", "ValidationError", decoded.datum)
            return None
        return TradeV2.from_avro(decoded.datum)

    def _dead_letter(self, tp: TopicPartition, message: Any, reason: str, kind: str, datum: Any) -> None:
        self.stats.dead_lettered += 1
        self.metrics.dead_letters.labels(kind).inc()
        self.metrics.errors.labels(kind).inc()
        self.dlq.put(
            reason,
            message.value or b"",
            topic=tp.topic,
            partition=tp.partition,
            offset=message.offset,
            error_type=kind,
            kafka_timestamp_ms=message.timestamp,
            decoded={k: str(v) for k, v in datum.items()} if isinstance(datum, dict) else None,
        )

    async def flush(self) -> None:
        """Append the batch with its offsets (if it has records), then commit the offsets to Kafka."""
        self._last_flush = time.monotonic()
        if not self._next:  # nothing consumed since the last flush
            return
        offsets = {(tp.topic, tp.partition): offset for tp, offset in self._next.items()}
        if self._batch:
            result = await asyncio.to_thread(self._writer.append, self._batch, offsets)
            self.stats.written += result.records
            self.stats.snapshots += 1
            self.stats.commit_seconds.append(result.seconds)
            self.metrics.write_seconds.observe(result.seconds)
            self.metrics.batch_size.observe(result.records)
            for topic, count in self._batch_topics.items():
                self.metrics.written.labels(topic).inc(count)
            for message_id in self._batch_ids:
                self._recent_ids[message_id] = None
            while len(self._recent_ids) > RECENT_MESSAGE_IDS:
                self._recent_ids.popitem(last=False)
        self._batch, self._batch_ids, self._batch_topics = [], set(), Counter()
        assert self._consumer is not None
        await self._consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in self._next.items()})
        self._written_next.update(self._next)
        self._next = {}
        self._measure_lag(self._consumer)
