"""Batching as the seed describes it, on the real stack: size, interval, shutdown, empty batches, bounds;
and the seed's PromQL against the consumer service."""

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest

from k2tui.ingest.producer import ensure_topics
from k2tui.ingest.topics import TOPICS
from k2tui.lake.catalog import open_trades_table
from k2tui.model.samples import sample_trades
from k2tui.model.trade import Exchange
from k2tui.stack.proxy import Mode
from k2tui.stack.supervisor import FaultAction, LocalStack
from tests.integration.pipeline import consumer_for, ids_in_lake, produce, until


@pytest.fixture
def topic(stack: LocalStack) -> str:
    name = f"test.batching.{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(stack.layout.endpoints.kafka_bootstrap, [name], 3))
    return name


def trades_table(stack: LocalStack):  # type: ignore[no-untyped-def]
    return open_trades_table(stack.layout)


def _snapshot_count(stack: LocalStack) -> int:
    return len(open_trades_table(stack.layout).snapshots())


async def test_full_batches_flush_on_size_and_the_partial_one_at_the_end(
    stack: LocalStack, topic: str, tmp_path: Path
) -> None:
    trades = list(sample_trades(250, seed=601))
    await produce(stack, topic, trades)
    consumer = consumer_for(
        stack,
        open_trades_table(stack.layout),
        topic,
        tmp_path / "dlq",
        batch_size=100,
        flush_interval=600,
        max_messages=250,
    )
    stats = await consumer.run(asyncio.Event())
    assert stats.snapshots == 3 and stats.written == 250  # 100 + 100 + the partial 50 at shutdown
    samples = {s.name: s.value for s in consumer.metrics.batch_size.collect()[0].samples if not s.labels}
    assert (samples["k2_batch_size_count"], samples["k2_batch_size_sum"]) == (3, 250)
    assert consumer.pending == 0


async def test_a_partial_batch_flushes_when_the_interval_passes(
    stack: LocalStack, topic: str, tmp_path: Path
) -> None:
    trades = list(sample_trades(30, seed=602))
    consumer = consumer_for(
        stack, trades_table(stack), topic, tmp_path / "dlq", batch_size=1000, flush_interval=0.5
    )
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    await produce(stack, topic, trades)
    began = time.monotonic()
    await until(lambda: consumer.stats.written == 30, 30, "30 trades written without a full batch")
    took = time.monotonic() - began
    stop.set()
    await running
    assert took < 10, "written by the interval, not by shutdown"


async def test_an_idle_consumer_adds_no_empty_snapshots(
    stack: LocalStack, topic: str, tmp_path: Path
) -> None:
    before = _snapshot_count(stack)
    consumer = consumer_for(
        stack, trades_table(stack), topic, tmp_path / "dlq", flush_interval=0.2, idle_stop=3.0
    )
    stats = await consumer.run(asyncio.Event())
    assert stats.snapshots == 0 and _snapshot_count(stack) == before


async def test_a_batch_of_only_refused_messages_moves_the_kafka_offset_without_a_snapshot(
    stack: LocalStack, topic: str, tmp_path: Path
) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=stack.layout.endpoints.kafka_bootstrap)
    await producer.start()
    for n in range(5):
        await producer.send_and_wait(topic, f"not avro {n}".encode(), partition=0)
    await producer.stop()
    before = _snapshot_count(stack)
    consumer = consumer_for(stack, trades_table(stack), topic, tmp_path / "dlq", max_messages=5)
    stats = await consumer.run(asyncio.Event())
    assert (stats.dead_lettered, stats.snapshots) == (5, 0) and _snapshot_count(stack) == before
    again = await consumer_for(stack, trades_table(stack), topic, tmp_path / "dlq", idle_stop=3.0).run(
        asyncio.Event()
    )
    assert again.consumed == 0, "the Kafka commit covered the refused messages"


async def test_while_the_lake_is_away_memory_stays_bounded_by_the_batch(
    stack: LocalStack, topic: str, tmp_path: Path, healed: None
) -> None:
    trades = list(sample_trades(1010, seed=603))
    consumer = consumer_for(
        stack, trades_table(stack), topic, tmp_path / "dlq", batch_size=100, flush_interval=0.2
    )
    table = open_trades_table(stack.layout)
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    await produce(stack, topic, trades[:10])
    await until(lambda: consumer.stats.written == 10, 30, "the consumer has found its start offsets")
    stack.fault("object-store", FaultAction.PARTITION, mode=Mode.RESET)
    await produce(stack, topic, trades[10:])
    high = 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        high = max(high, consumer.pending)
        await asyncio.sleep(0.05)
    stack.fault("object-store", FaultAction.HEAL)
    await until(lambda: consumer.stats.written == 1010, 90, "all written after the heal")
    stop.set()
    await running
    assert 0 < high <= 100 + 100, f"held {high} messages; fetching should pause at a full batch"
    assert len(ids_in_lake(table, trades)) == 1010


def test_the_seeds_promql_works_unchanged_on_the_consumer_service(stack: LocalStack) -> None:
    states = {s.name: s.state.value for s in stack.status()}
    if states.get("prometheus") != "ready":
        pytest.skip(f"Prometheus is {states.get('prometheus')} here (not installed); `.ci/run` installs it")
    trades = [t for t in sample_trades(400, seed=604) if t.exchange is Exchange.BINANCE]
    query = f"{stack.layout.endpoints.prometheus_url}/api/v1/query"
    seed_queries = (
        "rate(k2_messages_consumed_total[5m])",
        "histogram_quantile(0.99, rate(k2_iceberg_write_duration_seconds_bucket[5m]))",
    )
    deadline = time.monotonic() + 60
    answers: dict[str, list] = {}  # type: ignore[type-arg]
    rounds = [trades[:100], trades[100:]]  # the first creates the series, the second makes them rise
    while time.monotonic() < deadline:
        if rounds:
            asyncio.run(produce(stack, TOPICS[Exchange.BINANCE], rounds.pop(0)))
        answers = {
            q: httpx.get(query, params={"query": q}, timeout=5).json()["data"]["result"] for q in seed_queries
        }
        if all(any(float(r["value"][1]) > 0 for r in result) for result in answers.values()):
            return
        time.sleep(3)
    raise AssertionError(f"the seed's PromQL found no positive series: {answers}")


async def test_a_new_group_without_from_beginning_starts_at_the_log_end_and_misses_nothing_after(
    stack: LocalStack, topic: str, tmp_path: Path
) -> None:
    trades = list(sample_trades(120, seed=605))
    await produce(stack, topic, trades[:50])  # before the group exists: skipped, as asked
    events: list[str] = []
    consumer = consumer_for(
        stack, trades_table(stack), topic, tmp_path / "dlq", from_beginning=False, on_event=events.append
    )
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    await until(lambda: sum("starts at the log end" in e for e in events) == 3, 30, "all three started")
    await produce(stack, topic, trades[50:])
    await until(lambda: consumer.stats.written >= 70, 30, "the 70 produced after the start")
    await asyncio.sleep(1)
    stop.set()
    stats = await running
    assert stats.written == 70
    assert set(ids_in_lake(open_trades_table(stack.layout), trades)) == {t.message_id for t in trades[50:]}
