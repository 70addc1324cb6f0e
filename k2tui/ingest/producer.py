"""Trades to Kafka as Confluent-framed Avro, keyed by symbol, acks=all.

While the broker or the registry is away, trades wait in a bounded buffer whose depth is visible; a
trade that does not fit is written to the dead-letter queue with the reason, never dropped in silence.
A batch whose send fails is sent again whole: a copy that did reach Kafka carries the same message_id,
which the consumer de-duplicates on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from k2tui.ingest.dlq import DeadLetterQueue
from k2tui.ingest.topics import TOPICS
from k2tui.model.schema import trade_v2_schema, trade_v2_schema_text
from k2tui.model.trade import Exchange, TradeV2
from k2tui.model.wire import AvroEncoder
from k2tui.stack.registry.client import RegistryClient, RegistryRequestError, RegistryUnavailableError


async def ensure_topics(
    bootstrap: str, topics: Iterable[str], partitions: int, request_timeout_ms: int = 10_000
) -> None:
    """Create the topics that do not exist yet, with `partitions` each (never left to auto-creation)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


BATCH = 2000
RETRY_S = 1.0
LATENCY_SAMPLES = 4096

log = logging.getLogger(__name__)


def subject_for(topic: str) -> str:
    """Confluent's TopicNameStrategy."""
    return f"{topic}-value"


@dataclass
class ProducerStats:
    acked: int = 0
    overflowed: int = 0
    abandoned: int = 0
    send_failures: int = 0
    kafka_up: bool = False
    registry_up: bool = False
    last_error: str = ""
    latencies_us: deque[int] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))


class TradeProducer:
    def __init__(
        self,
        bootstrap: str,
        registry_url: str,
        *,
        partitions: int,
        buffer_limit: int,
        dlq: DeadLetterQueue | None = None,
        request_timeout_ms: int = 5000,
    ) -> None:
        self.bootstrap = bootstrap
        self.registry_url = registry_url
        self.partitions = partitions
        self.buffer_limit = buffer_limit
        self.dlq = dlq
        self.request_timeout_ms = request_timeout_ms
        self.stats = ProducerStats()
        self._buffer: deque[TradeV2] = deque()
        self._has_work = asyncio.Event()
        self._encoders: dict[Exchange, AvroEncoder] = {}
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[tuple[str, bytes], int] = {}

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def submit(self, trades: Sequence[TradeV2]) -> None:
        """Queue trades for Kafka (never blocks); what the buffer cannot hold goes to the DLQ."""
        room = max(0, self.buffer_limit - len(self._buffer))
        self._buffer.extend(trades[:room])
        if len(trades) > room:
            reason = (
                f"producer buffer full ({self.buffer_limit:,} trades, streams.producer_buffer) while "
                f"{'Kafka' if self.stats.registry_up else 'the Schema Registry'} was unavailable "
                f"({self.stats.last_error})"
            )
            self.stats.overflowed += self._dead_letter(trades[room:], reason, "BufferFull")
        self._has_work.set()

    def _dead_letter(self, trades: Sequence[TradeV2], reason: str, error_type: str) -> int:
        """Report trades Kafka will not get: each to the DLQ with the reason. Returns how many."""
        if self.dlq is not None:
            for trade in trades:
                self.dlq.put(
                    reason,
                    msgspec.json.encode(trade),
                    error_type=error_type,
                    topic=TOPICS[trade.exchange],
                    key=trade.symbol.encode(),
                    trade_time_us=trade.timestamp,
                )
        return len(trades)

    async def run(self, stop: asyncio.Event, *, drain_timeout: float = 10.0) -> None:
        """Send until `stop` is set and the buffer is empty.

        After `stop`, unsent trades get `drain_timeout` seconds more; what Kafka still has not taken then
        is written to the dead-letter queue with the reason, so a stop never loses a trade in silence.
        """
        stopped_at: float | None = None
        try:
            while True:
                if stop.is_set() and stopped_at is None:
                    stopped_at = time.monotonic()
                if stopped_at is not None and (
                    not self._buffer or time.monotonic() - stopped_at > drain_timeout
                ):
                    self._abandon()
                    return
                if self._producer is None:
                    if not await self._prepare():
                        # Once stopped, `stop` is set and would not wait at all.
                        await (asyncio.sleep(RETRY_S) if stopped_at is not None else _wait(stop, RETRY_S))
                    continue
                if not self._buffer:
                    self._has_work.clear()
                    await _first(self._has_work.wait(), stop.wait())
                    continue
                await self._send_batch()
        finally:
            if self._producer is not None:
                with contextlib.suppress(KafkaError, asyncio.TimeoutError):
                    await self._producer.stop()

    def _abandon(self) -> None:
        reason = f"stream stopped before Kafka took this trade: {self.stats.last_error or 'no error seen'}"
        self.stats.abandoned += self._dead_letter(list(self._buffer), reason, "Unsent")
        self._buffer.clear()

    async def _prepare(self) -> bool:
        """Register the schema for both topics, create the topics, start the Kafka client."""
        try:
            if not self._encoders:  # registered once; a retry for Kafka's sake does not ask again
                await asyncio.to_thread(self._register)
            self.stats.registry_up = True
        except RegistryUnavailableError as error:
            self.stats.registry_up = False
            self.stats.last_error = str(error)
            return False
        try:
            await ensure_topics(self.bootstrap, TOPICS.values(), self.partitions, self.request_timeout_ms)
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                enable_idempotence=False,  # tansu has no InitProducerId; duplicates are dropped on message_id
                linger_ms=5,
                max_batch_size=512 * 1024,
                request_timeout_ms=self.request_timeout_ms,
            )
            await producer.start()
        except (KafkaError, OSError) as error:
            self.stats.kafka_up = False
            self.stats.last_error = f"Kafka at {self.bootstrap} is unavailable: {error}"
            return False
        self._producer = producer
        self.stats.kafka_up = True
        return True

    def _register(self) -> None:
        encoders = {}
        with RegistryClient(self.registry_url) as registry:
            for exchange, topic in TOPICS.items():
                try:
                    schema_id = registry.register(subject_for(topic), trade_v2_schema_text())
                except RegistryRequestError as error:
                    raise RuntimeError(f"the registry refused the v2 schema for {topic}: {error}") from error
                encoders[exchange] = AvroEncoder(schema_id, trade_v2_schema())
        self._encoders = encoders  # all or nothing, so a half-registered set is never taken as done

    async def _send_batch(self) -> None:
        """Send up to BATCH trades as one record batch per partition, and wait for every acknowledgement.

        Building the batches here (murmur2 partitioning by symbol, as Kafka's own clients do) costs a
        fraction of aiokafka's per-message send().
        """
        assert self._producer is not None
        producer = self._producer
        batch = [self._buffer.popleft() for _ in range(min(BATCH, len(self._buffer)))]
        try:
            builders: dict[tuple[str, int], Any] = {}
            futures = []
            for trade in batch:
                topic = TOPICS[trade.exchange]
                key = trade.symbol.encode()
                partition = await self._partition(topic, key)
                value = self._encoders[trade.exchange].encode(trade.to_avro())
                builder = builders.get((topic, partition))
                if builder is None:
                    builder = builders[(topic, partition)] = producer.create_batch()
                if builder.append(key=key, value=value, timestamp=None) is None:  # full: send it, start anew
                    futures.append(await producer.send_batch(builder, topic, partition=partition))
                    builder = builders[(topic, partition)] = producer.create_batch()
                    builder.append(key=key, value=value, timestamp=None)
            for (topic, partition), builder in builders.items():
                futures.append(await producer.send_batch(builder, topic, partition=partition))
            await asyncio.gather(*futures)
        except (TimeoutError, KafkaError, OSError) as error:
            self._buffer.extendleft(reversed(batch))
            self.stats.send_failures += 1
            self.stats.kafka_up = False
            self.stats.last_error = f"Kafka at {self.bootstrap}: {type(error).__name__} {error}".strip()
            log.warning("send failed, %d trades kept for retry: %s", len(batch), error)
            await asyncio.sleep(RETRY_S)
            return
        acked_us = time.time_ns() // 1000
        self.stats.kafka_up = True
        self.stats.acked += len(batch)
        self.stats.latencies_us.extend(acked_us - t.ingestion_timestamp for t in batch)

    async def _partition(self, topic: str, key: bytes) -> int:
        cached = self._partitions.get((topic, key))
        if cached is None:
            assert self._producer is not None
            partitions = sorted(await self._producer.partitions_for(topic))
            cached = self._partitions[(topic, key)] = _PARTITIONER(key, partitions, partitions)
        return cached


_PARTITIONER = DefaultPartitioner()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _first(*awaitables: object) -> None:
    tasks = [asyncio.ensure_future(a) for a in awaitables]  # type: ignore[arg-type]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
