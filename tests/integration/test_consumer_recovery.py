"""The consumer survives what the tool can inject: SIGKILL at each step of a flush, SIGTERM, the
registry going away, and a group of three with rebalances. Every proof reads Kafka and Iceberg
independently and compares message ids, not counters the consumer reports about itself. The lake going
away, with the breaker opening and nothing advancing, is proven on the consumer service by
tests/e2e/test_fault_recovery.py.
"""

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from k2tui.consume.crash import CrashPoint
from k2tui.consume.resilience import BreakerState
from k2tui.consume.writer import committed_offsets
from k2tui.ingest.dlq import read_dead_letters
from k2tui.ingest.producer import ensure_topics
from k2tui.lake.catalog import open_trades_table
from k2tui.model.samples import sample_trades
from k2tui.model.trade import TradeV2
from k2tui.model.wire import AvroDecoder
from k2tui.stack.ports import find_free_port
from k2tui.stack.registry.client import RegistryClient
from k2tui.stack.supervisor import FaultAction, LocalStack
from tests.integration.pipeline import consumer_for, ids_in_lake, produce, until
from tests.integration.stack_fixture import k2tui_env

PARTITIONS = 3


@pytest.fixture
def topic(stack: LocalStack) -> str:
    return _new_topic(stack)


def _new_topic(stack: LocalStack) -> str:
    name = f"test.recovery.{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(stack.layout.endpoints.kafka_bootstrap, [name], PARTITIONS))
    return name


async def _ids_in_kafka(stack: LocalStack, topic: str) -> Counter[str]:
    """Every message id in the topic, read with a group-less consumer from the start of each partition."""
    endpoints = stack.layout.endpoints
    decoder = AvroDecoder(RegistryClient(endpoints.registry_url))
    reader = AIOKafkaConsumer(
        topic, bootstrap_servers=endpoints.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await reader.start()
    ids: Counter[str] = Counter()
    try:
        while batch := await reader.getmany(timeout_ms=2000):
            for messages in batch.values():
                ids.update(decoder.decode(m.value).datum["message_id"] for m in messages)
    finally:
        await reader.stop()
    return ids


CRASHES = {
    CrashPoint.BEFORE_APPEND: (100, 100),
    CrashPoint.AFTER_APPEND: (200, 100),  # Iceberg is ahead of Kafka: a restart must not write again
    CrashPoint.AFTER_COMMIT: (200, 200),
}
"""Crash point → (rows in the lake, offsets committed to Kafka) after a SIGKILL in the second flush."""


def test_sigkill_at_each_step_of_a_flush_loses_and_doubles_nothing(
    stack: LocalStack, stack_env: dict[str, str]
) -> None:
    """The three crash points side by side, each with a topic and a group of its own (they share only
    the table, which concurrent writers are made for): the waits of the three runs overlap."""
    topics = {point: _new_topic(stack) for point in CRASHES}
    trades = {point: list(sample_trades(300, seed=500 + n)) for n, point in enumerate(CRASHES)}
    for point, topic in topics.items():
        asyncio.run(produce(stack, topic, trades[point]))

    def consume(point: CrashPoint, *args: str) -> subprocess.Popen[str]:
        topic = topics[point]
        common = ("--topics", topic, "--group", f"g-{topic}", "--from-beginning", "--batch-size", "100")
        return _k2tui(stack_env, "consume", *common, *args)

    crashed = {point: consume(point, "--crash-at", f"{point.value}:2") for point in CRASHES}
    table = open_trades_table(stack.layout)
    for point, (rows, kafka_commit) in CRASHES.items():
        output, _ = crashed[point].communicate(timeout=180)
        assert crashed[point].returncode == -signal.SIGKILL, (point, output)
        group = f"g-{topics[point]}"
        assert sum(ids_in_lake(table, trades[point]).values()) == rows, point
        assert sum(committed_offsets(table, group).values()) == rows, point
        assert _kafka_committed(stack, topics[point], group) == kafka_commit, point

    restarted = {
        point: consume(point, "--max-messages", str(300 - rows)) for point, (rows, _) in CRASHES.items()
    }
    for point, (rows, _) in CRASHES.items():
        output, _ = restarted[point].communicate(timeout=180)
        assert restarted[point].returncode == 0, (point, output)
        assert f"Messages written: {300 - rows}" in output, (point, output)
        in_lake = ids_in_lake(table, trades[point])
        in_kafka = asyncio.run(_ids_in_kafka(stack, topics[point]))
        assert in_lake == in_kafka == Counter(t.message_id for t in trades[point]), point  # each once in both
        assert sum(committed_offsets(table, f"g-{topics[point]}").values()) == 300, point
        assert _kafka_committed(stack, topics[point], f"g-{topics[point]}") == 300, point


def _k2tui(stack_env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "k2tui", *args],
        env=k2tui_env(stack_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kafka_committed(stack: LocalStack, topic: str, group: str) -> int:
    async def read() -> int:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.structs import TopicPartition

        admin = AIOKafkaAdminClient(bootstrap_servers=stack.layout.endpoints.kafka_bootstrap)
        await admin.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
        finally:
            await admin.close()
        return sum(max(0, meta.offset) for meta in offsets.values())

    return asyncio.run(read())


def test_sigterm_writes_the_partial_batch_leaves_the_group_and_exits_within_ten_seconds(
    stack: LocalStack, stack_env: dict[str, str], topic: str
) -> None:
    trades = list(sample_trades(250, seed=510))
    port = find_free_port()
    process = _k2tui(
        stack_env,
        *("consume", "--topics", topic, "--group", f"g-{topic}", "--from-beginning"),
        *("--batch-size", "1000", "--flush-interval", "600", "--metrics-port", str(port)),
    )
    try:
        asyncio.run(produce(stack, topic, trades))
        _wait_for_metric(port, f'k2_messages_consumed_total{{topic="{topic}"}} 250.0', 60)
        table = open_trades_table(stack.layout)
        assert sum(ids_in_lake(table, trades).values()) == 0, "a 1000-row batch that never filled"
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
        took = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert took <= 10, f"exited {took:.1f} s after SIGTERM"
    assert "Messages consumed: 250" in output and "Messages written: 250" in output
    assert ids_in_lake(table, trades) == Counter(t.message_id for t in trades)


def _wait_for_metric(port: int, line: str, limit: float) -> str:
    deadline = time.monotonic() + limit
    text = ""
    while time.monotonic() < deadline:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            text = ""
        if line in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{line!r} not seen in {limit} s; last scrape:\n{text[-2000:]}")


async def test_while_the_registry_is_stopped_messages_wait_and_none_is_dead_lettered(
    stack: LocalStack, topic: str, tmp_path: Path, healed: None
) -> None:
    table = open_trades_table(stack.layout)
    trades = list(sample_trades(150, seed=530))
    await produce(stack, topic, trades)
    await asyncio.to_thread(stack.fault, "registry", FaultAction.STOP)
    consumer = consumer_for(stack, table, topic, tmp_path / "dlq")  # a fresh consumer has no schema cached
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    await until(lambda: consumer.registry_breaker.state is BreakerState.OPEN, 60, "registry breaker opened")
    assert consumer.stats.written == 0 and not list(read_dead_letters(tmp_path / "dlq"))

    await asyncio.to_thread(stack.fault, "registry", FaultAction.START)
    await until(lambda: consumer.stats.written == 150, 60, "everything written once the registry is back")
    stop.set()
    stats = await running
    assert stats.dead_lettered == 0 and stats.accounted
    assert ids_in_lake(table, trades) == Counter(t.message_id for t in trades)


async def test_three_consumers_and_two_rebalances_write_every_message_exactly_once(
    stack: LocalStack, topic: str, tmp_path: Path
) -> None:
    table = open_trades_table(stack.layout)
    trades = list(sample_trades(3000, seed=540))
    members = [  # one table object each, as separate processes would have
        consumer_for(stack, open_trades_table(stack.layout), topic, tmp_path / str(i) / "dlq", batch_size=100)
        for i in range(3)
    ]
    stops = [asyncio.Event() for _ in members]
    tasks = [asyncio.create_task(members[i].run(stops[i])) for i in range(2)]

    async def produce_slowly(part: list[TradeV2]) -> None:
        for start in range(0, len(part), 100):
            # Keyed by trade id, not symbol: six symbols need not reach all three partitions.
            await produce(stack, topic, part[start : start + 100], key=lambda trade: trade.trade_id)
            await asyncio.sleep(0.1)

    await produce_slowly(trades[:1000])
    await until(lambda: sum(m.stats.written for m in members) >= 500, 60, "two members writing")
    tasks.append(asyncio.create_task(members[2].run(stops[2])))  # rebalance: a third joins
    await until(lambda: bool(members[2].assignment), 60, "the third assigned")
    await produce_slowly(trades[1000:2000])
    await until(lambda: members[2].stats.written > 0, 60, "the third member writing")
    stops[0].set()  # rebalance: the first leaves while the last third is produced
    await asyncio.gather(tasks[0], produce_slowly(trades[2000:]))
    await until(
        lambda: sum(committed_offsets(table.refresh(), f"g-{topic}").values()) == 3000, 90, "all recorded"
    )
    for stop in stops[1:]:
        stop.set()
    results = await asyncio.gather(*tasks)
    assert all(r.errors == 0 and r.accounted for r in results)
    assert ids_in_lake(table, trades) == Counter(t.message_id for t in trades)
    assert sum(r.written + r.duplicates for r in results) >= 3000


def test_the_consumer_runs_as_a_stack_service_serving_metrics(stack: LocalStack) -> None:
    states = {s.name: s.state.value for s in stack.status()}
    assert states["consumer"] == "ready"
    port = stack.layout.settings.consumer.metrics_port
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'k2_circuit_breaker_state{dependency="lake"} 0.0' in scraped


def test_prometheus_scrapes_the_consumer_service(stack: LocalStack) -> None:
    states = {s.name: s.state.value for s in stack.status()}
    if states.get("prometheus") != "ready":
        pytest.skip(f"Prometheus is {states.get('prometheus')} here (not installed); `.ci/run` installs it")
    query = f"{stack.layout.endpoints.prometheus_url}/api/v1/query"
    deadline = time.monotonic() + 15
    answer: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        answer = httpx.get(
            query, params={"query": 'k2_circuit_breaker_state{job="consumer"}'}, timeout=5
        ).json()
        if len(answer["data"]["result"]) == 2:  # the lake and the registry
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus has no circuit breaker series from the consumer: {answer}")
