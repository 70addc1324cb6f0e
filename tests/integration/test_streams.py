"""Simulator → stream clients → producer → broker, read back with Confluent's own Avro deserializer."""

import asyncio
import contextlib
import time
from collections import Counter

from aiokafka import AIOKafkaConsumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from k2tui.ingest.dlq import DeadLetterQueue, read_dead_letters
from k2tui.ingest.producer import TradeProducer
from k2tui.ingest.runner import SIMULATED, StreamRun, dlq_dir, protocol_for, simulator_running
from k2tui.ingest.topics import TOPICS
from k2tui.model.trade import TradeV2
from k2tui.model.validation import validate
from k2tui.stack.supervisor import LocalStack


async def _read_topic(bootstrap: str, topic: str, wanted: set[str], decode) -> list[dict]:  # type: ignore[no-untyped-def]
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[dict] = []
    try:
        deadline = time.monotonic() + 30
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for messages in batches.values():
                for m in messages:
                    # The shared topics also hold messages other tests made undecodable on purpose.
                    with contextlib.suppress(SerializationError, ValueError):
                        records.append(decode(m.value, topic))
                quiet_since = time.monotonic()
            seen = {r["message_id"] for r in records}
            if wanted <= seen and time.monotonic() - quiet_since > 1.0:
                break
    finally:
        await consumer.stop()
    return records


async def test_streams_reach_kafka_valid_with_none_missing_or_doubled_across_reconnects(
    stack: LocalStack,
) -> None:
    settings = stack.layout.settings
    endpoints = stack.layout.endpoints
    accepted: list[TradeV2] = []
    producer = TradeProducer(
        endpoints.kafka_bootstrap,
        endpoints.registry_url,
        partitions=3,
        buffer_limit=100_000,
        dlq=DeadLetterQueue(dlq_dir(settings), "producer"),
    )
    async with simulator_running(rate=40, seed=11) as simulator:
        protocols = [protocol_for(e, settings, simulator.url) for e in ("binance", "kraken")]
        run = StreamRun(
            settings,
            protocols,
            sources=dict.fromkeys(("binance", "kraken"), SIMULATED),
            producer=producer,
            on_trades=accepted.extend,
        )
        task = asyncio.create_task(run.run(duration=7))
        await asyncio.sleep(2.5)
        simulator.drop_connections()
        await asyncio.sleep(2.0)
        simulator.inject_malformed("binance", 2)
        report = await task

    assert report.errors == []
    assert all(s.reconnects >= 1 for s in report.streams), [s.last_reconnect_reason for s in report.streams]
    assert producer.stats.acked == len(accepted) == report.trades > 100

    registry = SchemaRegistryClient({"url": endpoints.registry_url})
    deserializer = AvroDeserializer(registry)

    def decode(value: bytes, topic: str) -> dict:
        return deserializer(value, SerializationContext(topic, MessageField.VALUE))

    wanted = {t.message_id for t in accepted}
    found: list[dict] = []
    for exchange, topic in TOPICS.items():
        of_topic = {t.message_id for t in accepted if t.exchange is exchange}
        found.extend(await _read_topic(endpoints.kafka_bootstrap, topic, of_topic, decode))
    ours = [r for r in found if r["message_id"] in wanted]
    counts = Counter(r["message_id"] for r in ours)
    assert set(counts) == wanted, "every trade the streams accepted is in Kafka"
    assert max(counts.values()) == 1, "no trade is in Kafka twice, although Kraken replays its snapshot"
    assert all(validate(r) == [] for r in ours)

    # Kraken's snapshot after the reconnect repeated trades the stream already had: they were dropped.
    kraken = next(s for s in report.streams if s.name == "kraken")
    assert kraken.duplicates > 0
    refused = list(read_dead_letters(dlq_dir(settings), "stream-binance"))
    assert len(refused) >= 2 and all(d.reason and d.raw_bytes() for d in refused)
