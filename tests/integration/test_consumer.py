"""The consumer on the real stack: every message exactly once in Iceberg, across restarts and crashes."""

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pyiceberg.exceptions import NoSuchTableError

from k2tui.consume.consumer import IcebergConsumer
from k2tui.consume.writer import committed_offsets
from k2tui.ingest.dlq import DeadLetterQueue, read_dead_letters
from k2tui.lake.catalog import open_catalog
from k2tui.lake.table import TRADES_V2_PARTITIONING, TRADES_V2_PROPERTIES, TRADES_V2_SCHEMA
from k2tui.model.samples import sample_trades
from k2tui.model.schema import trade_v2_schema, trade_v2_schema_text
from k2tui.model.trade import TradeV2
from k2tui.model.wire import AvroEncoder
from k2tui.stack.ports import find_free_port
from k2tui.stack.registry.client import RegistryClient
from k2tui.stack.supervisor import LocalStack


@pytest.fixture
def table(stack: LocalStack) -> Iterator:  # type: ignore[type-arg]
    catalog = open_catalog(stack.layout)
    name = f"market_data.consumer_{uuid.uuid4().hex[:8]}"
    yield catalog.create_table(
        name, TRADES_V2_SCHEMA, partition_spec=TRADES_V2_PARTITIONING, properties=TRADES_V2_PROPERTIES
    )
    with contextlib.suppress(NoSuchTableError):
        catalog.drop_table(name)


@pytest.fixture
def topic() -> str:
    return f"test.trades.{uuid.uuid4().hex[:8]}"


async def _produce(stack: LocalStack, topic: str, trades: list[TradeV2], extra: list[bytes] = ()) -> None:  # type: ignore[assignment]
    endpoints = stack.layout.endpoints
    schema_id = RegistryClient(endpoints.registry_url).register(f"{topic}-value", trade_v2_schema_text())
    encoder = AvroEncoder(schema_id, trade_v2_schema())
    producer = AIOKafkaProducer(
        bootstrap_servers=endpoints.kafka_bootstrap, acks="all", enable_idempotence=False
    )
    await producer.start()
    try:
        for trade in trades:
            await producer.send(topic, encoder.encode(trade.to_avro()), key=trade.symbol.encode())
        for raw in extra:
            await producer.send(topic, raw, key=b"bad")
        await producer.flush()
    finally:
        await producer.stop()


def _consumer(stack: LocalStack, table, topic: str, tmp_path: Path, **options) -> IcebergConsumer:  # type: ignore[no-untyped-def]
    endpoints = stack.layout.endpoints
    return IcebergConsumer(
        bootstrap=endpoints.kafka_bootstrap,
        registry_url=endpoints.registry_url,
        table=table,
        topics=[topic],
        dlq=DeadLetterQueue(tmp_path / "dlq", "consumer"),
        group=f"g-{topic}",
        from_beginning=True,
        flush_interval=1.0,
        **options,
    )


def _ids_in(table) -> Counter[str]:  # type: ignore[no-untyped-def]
    table.refresh()
    return Counter(table.scan(selected_fields=("message_id",)).to_arrow().column("message_id").to_pylist())


async def test_every_message_lands_once_and_a_restart_adds_only_new_ones(
    stack: LocalStack,
    table,
    topic: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    trades = list(sample_trades(1200, seed=21))
    await _produce(stack, topic, trades[:700])
    stats = await _consumer(stack, table, topic, tmp_path, max_messages=700).run(asyncio.Event())
    assert (stats.consumed, stats.written, stats.dead_lettered) == (700, 700, 0)
    assert stats.snapshots == 2  # 500 + 200, the seed's batch size

    await _produce(stack, topic, trades[700:])
    again = await _consumer(stack, table, topic, tmp_path, max_messages=500).run(asyncio.Event())
    assert again.consumed == 500
    ids = _ids_in(table)
    assert set(ids) == {t.message_id for t in trades} and max(ids.values()) == 1
    assert sum(committed_offsets(table, f"g-{topic}").values()) == 1200


async def test_bad_messages_go_to_the_dlq_with_their_bytes_and_the_rest_is_written(
    stack: LocalStack,
    table,
    topic: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    trades = list(sample_trades(50, seed=23))
    garbage = [b"\x00\x00\x00\x00\x01not avro", b"plain text, no magic byte"]
    await _produce(stack, topic, trades, garbage)
    consumer = _consumer(stack, table, topic, tmp_path, max_messages=52)
    port = find_free_port()
    consumer.metrics.serve(port)
    stats = await consumer.run(asyncio.Event())
    assert (stats.written, stats.dead_lettered) == (50, 2) and stats.accounted
    letters = list(read_dead_letters(tmp_path / "dlq"))
    assert sorted(letter.raw_bytes() for letter in letters) == sorted(garbage)
    assert all(letter.topic == topic and letter.offset is not None for letter in letters)

    async with httpx.AsyncClient(timeout=5) as http:
        scraped = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert f'k2_messages_consumed_total{{topic="{topic}"}} 52.0' in scraped
    assert f'k2_messages_written_total{{topic="{topic}"}} 50.0' in scraped
    assert 'k2_dlq_messages_total{reason="WireFormatError"} 2.0' in scraped
    assert "k2_iceberg_write_duration_seconds_bucket" in scraped and "k2_batch_size_count 1.0" in scraped
    assert f'k2_consumer_lag{{partition="0",topic="{topic}"}} 0.0' in scraped
    assert "process_resident_memory_bytes" in scraped
