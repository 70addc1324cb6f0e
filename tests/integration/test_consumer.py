"""The consumer on the real stack: every message exactly once in Iceberg, across restarts and crashes."""

import asyncio
import json
import re
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from k2tui.consume.writer import committed_offsets
from k2tui.ingest.dlq import read_dead_letters
from k2tui.lake.maintenance import MaintenancePolicy, MaintenanceSchedule
from k2tui.model.samples import sample_trades
from k2tui.model.schema import decodes_as_v2, trade_v2_schema
from k2tui.model.trade import TradeV2
from k2tui.model.wire import AvroEncoder
from k2tui.stack.ports import find_free_port
from k2tui.stack.proxy import Mode
from k2tui.stack.registry.client import RegistryClient
from k2tui.stack.supervisor import FaultAction, LocalStack
from tests.integration.pipeline import consumer_for, framed_producer, ids_in_lake, produce, until


@pytest.fixture
def topic() -> str:
    return f"test.trades.{uuid.uuid4().hex[:8]}"


async def test_every_message_lands_once_and_a_restart_adds_only_new_ones(
    stack: LocalStack,
    table,
    topic: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    trades = list(sample_trades(1200, seed=21))
    await produce(stack, topic, trades[:700])
    stats = await consumer_for(stack, table, topic, tmp_path / "dlq", max_messages=700).run(asyncio.Event())
    assert (stats.consumed, stats.written, stats.dead_lettered) == (700, 700, 0)
    assert stats.snapshots == 2  # 500 + 200, the seed's batch size

    await produce(stack, topic, trades[700:])
    again = await consumer_for(stack, table, topic, tmp_path / "dlq", max_messages=500).run(asyncio.Event())
    assert again.consumed == 500
    ids = ids_in_lake(table)
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
    await produce(stack, topic, trades, garbage)
    consumer = consumer_for(stack, table, topic, tmp_path / "dlq", max_messages=52)
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


async def test_records_breaking_the_v2_rules_and_duplicates_are_refused_row_by_row_in_a_batch(
    stack: LocalStack,
    table,
    topic: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Valid, broken and repeated records mixed in one batch, and records of another writer schema."""
    trades = list(sample_trades(300, seed=25))
    broken = {
        trades[10].message_id: {"price": "0"},
        trades[120].message_id: {"symbol": "btc/usdt", "asset_class": "equity"},
        trades[250].message_id: {"sequence_number": 1},
    }
    reordered = dict(trade_v2_schema())
    reordered["fields"] = list(reversed(reordered["fields"]))
    endpoints = stack.layout.endpoints
    registry = RegistryClient(endpoints.registry_url)
    other_id = registry.register(f"{topic}-reordered-value", json.dumps(reordered))
    other = AvroEncoder(other_id, reordered)
    assert not decodes_as_v2(reordered)
    async with framed_producer(stack, topic) as (producer, encoder):
        assert decodes_as_v2(json.loads(registry.schema_text_by_id(encoder.schema_id)))
        for index, trade in enumerate(trades):
            datum = trade.to_avro() | broken.get(trade.message_id, {})
            codec = other if 200 <= index < 260 else encoder  # one broken record among them
            await producer.send(topic, codec.encode(datum), key=trade.symbol.encode())
        for trade in trades[:5]:  # a producer's retry
            await producer.send(topic, encoder.encode(trade.to_avro()), key=trade.symbol.encode())
        await producer.flush()
    stats = await consumer_for(stack, table, topic, tmp_path / "dlq", max_messages=305).run(asyncio.Event())
    assert (stats.written, stats.dead_lettered, stats.duplicates) == (297, 3, 5) and stats.accounted
    ids = ids_in_lake(table)
    assert set(ids) == {t.message_id for t in trades} - set(broken) and max(ids.values()) == 1
    letters = {letter.decoded["message_id"]: letter for letter in read_dead_letters(tmp_path / "dlq")}
    assert set(letters) == set(broken)
    assert "price: must be greater than zero" in letters[trades[10].message_id].reason
    assert "symbol:" in letters[trades[120].message_id].reason
    assert "asset_class:" in letters[trades[120].message_id].reason
    assert "differs from sequence_number" in letters[trades[250].message_id].reason
    expected = {t.message_id: t for t in trades}
    rows = table.scan(selected_fields=("message_id", "price", "sequence_number")).to_arrow().to_pylist()
    assert all(
        (row["price"], row["sequence_number"])
        == (expected[row["message_id"]].price, expected[row["message_id"]].sequence_number)
        for row in rows
    )


def _frequent_maintenance(every: float) -> MaintenancePolicy:
    """Both jobs every `every` seconds, keeping 3 snapshots: maintenance within a test's few seconds."""
    return MaintenancePolicy(
        expire_every=every, compact_every=every, older_than=timedelta(0), retain_last=3, min_files=2
    )


async def test_the_consumer_expires_and_compacts_on_its_schedule_and_keeps_every_row_once(
    stack: LocalStack,
    table,
    topic: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    policy = _frequent_maintenance(0.5)
    events: list[str] = []
    trades = list(sample_trades(1200, seed=24))
    await produce(stack, topic, trades)
    consumer = consumer_for(
        stack,
        table,
        topic,
        tmp_path / "dlq",
        batch_size=100,
        max_messages=1200,
        maintenance=MaintenanceSchedule(policy, now=0.0),
        on_event=events.append,
    )
    stats = await consumer.run(asyncio.Event())
    assert stats.written == 1200 and stats.snapshots == 12
    ran = [e for e in events if e.startswith("lake maintenance:")]
    rewrites = [
        tuple(map(int, m.groups())) for e in ran if (m := re.search(r"compacted (\d+) files to (\d+)", e))
    ]
    assert any(before > after for before, after in rewrites), events  # how many depends on timing
    assert any("expired" in e for e in ran), events
    # Expiry ran; what it removes (nothing younger than a minute) is tested with the lake's own tests.
    assert ids_in_lake(table) == Counter(t.message_id for t in trades)
    assert sum(committed_offsets(table, f"g-{topic}").values()) == 1200, "offsets carried through maintenance"


async def test_maintenance_falling_due_while_the_lake_is_away_does_not_stop_the_consumer(
    stack: LocalStack,
    table,
    topic: str,
    tmp_path: Path,
    healed: None,  # type: ignore[no-untyped-def]
) -> None:
    policy = _frequent_maintenance(0.2)
    events: list[str] = []
    consumer = consumer_for(
        stack, table, topic, tmp_path / "dlq", maintenance=MaintenanceSchedule(policy), on_event=events.append
    )
    trades = list(sample_trades(40, seed=26))
    await produce(stack, topic, trades[:20])
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    await until(lambda: consumer.stats.written == 20, 30, "the first trades written")
    stack.fault("object-store", FaultAction.PARTITION, mode=Mode.RESET)
    ran = sum("lake maintenance" in e for e in events)
    await until(
        lambda: sum("lake maintenance" in e for e in events) >= ran + 2, 30, "maintenance in the fault"
    )
    stack.fault("object-store", FaultAction.HEAL)
    await produce(stack, topic, trades[20:])
    await until(lambda: consumer.stats.written == 40 or running.done(), 60, "trades written after the heal")
    assert not running.done(), running.exception()
    stop.set()
    await running
    assert ids_in_lake(table) == Counter(t.message_id for t in trades)


async def _produce_with_a_hole(stack: LocalStack, topic: str, trades: list[TradeV2], hole_at: int) -> None:
    """One batch whose offsets skip one after `hole_at` trades: a log with an offset that holds no record,
    as tansu leaves after a restart and Kafka after transactions or compaction."""
    async with framed_producer(stack, topic) as (producer, encoder):
        batch = producer.create_batch()
        for number, trade in enumerate(trades):
            if number == hole_at:
                batch._relative_offset += 1  # the record batch's offset deltas skip one
            batch.append(key=trade.symbol.encode(), value=encoder.encode(trade.to_avro()), timestamp=None)
        await (await producer.send_batch(batch, topic, partition=0))


async def test_a_consumer_starting_at_an_offset_that_holds_no_record_goes_on_from_the_next(
    stack: LocalStack,
    table,
    topic: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    trades = list(sample_trades(20, seed=29))
    await _produce_with_a_hole(stack, topic, trades, hole_at=10)  # offsets 0..9, then 11..20
    first = consumer_for(stack, table, topic, tmp_path / "dlq", max_messages=10)
    assert (await first.run(asyncio.Event())).written == 10
    assert committed_offsets(table, f"g-{topic}") == {(topic, 0): 10}

    # The next consumer starts where the lake says, at 10, where the log holds nothing.
    events: list[str] = []
    then = consumer_for(stack, table, topic, tmp_path / "dlq", max_messages=10, on_event=events.append)
    stats = await asyncio.wait_for(then.run(asyncio.Event()), 60)
    assert (stats.consumed, stats.written) == (10, 10)
    assert f"{topic}[0] holds no record at offsets 10..10; going on from 11" in events
    ids = ids_in_lake(table)
    assert set(ids) == {t.message_id for t in trades} and max(ids.values()) == 1
    assert committed_offsets(table, f"g-{topic}") == {(topic, 0): 21}


async def test_a_message_with_a_byte_left_over_among_good_ones_is_dead_lettered_alone(
    stack: LocalStack,
    table,
    topic: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Good messages are decoded together; the one whose body does not end where its record does is
    found message by message, with its reason, and nothing else is lost."""
    trades = list(sample_trades(400, seed=29))
    async with framed_producer(stack, topic) as (producer, encoder):
        for index, trade in enumerate(trades):
            raw = encoder.encode(trade.to_avro()) + (b"\x02" if index == 250 else b"")
            await producer.send(topic, raw, key=trade.symbol.encode())
        await producer.flush()
    consumer = consumer_for(stack, table, topic, tmp_path / "dlq", max_messages=len(trades))
    decoder, one_by_one = consumer._decoder, []
    decode = decoder.decode
    decoder.decode = lambda raw: one_by_one.append(raw) or decode(raw)  # type: ignore[method-assign]
    stats = await consumer.run(asyncio.Event())
    assert (stats.written, stats.dead_lettered) == (399, 1) and stats.accounted
    (letter,) = read_dead_letters(tmp_path / "dlq")
    assert letter.raw_bytes() == encoder.encode(trades[250].to_avro()) + b"\x02"
    assert "bytes left over after the record" in letter.reason
    ids = ids_in_lake(table, trades)
    assert set(ids) == {t.message_id for i, t in enumerate(trades) if i != 250} and max(ids.values()) == 1
    # Alone: the first message, which looked its schema up, and the one that does not decode.
    assert len(one_by_one) == 2 and one_by_one[-1] == letter.raw_bytes()
