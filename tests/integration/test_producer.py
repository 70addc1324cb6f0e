"""The producer while Kafka or the registry is away: it buffers, shows the depth, and loses nothing."""

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from k2tui.ingest.dlq import DeadLetterQueue, read_dead_letters
from k2tui.ingest.producer import TradeProducer
from k2tui.model.samples import sample_trades
from k2tui.stack.proxy import Mode
from k2tui.stack.supervisor import FaultAction, LocalStack


@pytest.fixture
def healed(stack: LocalStack) -> Iterator[LocalStack]:
    yield stack
    for name in ("broker", "registry"):
        stack.fault(name, FaultAction.HEAL)


def _producer(stack: LocalStack, tmp_path: Path, buffer_limit: int = 10_000) -> TradeProducer:
    endpoints = stack.layout.endpoints
    return TradeProducer(
        endpoints.kafka_bootstrap,
        endpoints.registry_url,
        partitions=3,
        buffer_limit=buffer_limit,
        dlq=DeadLetterQueue(tmp_path / "dlq", "producer"),
        request_timeout_ms=2000,
    )


async def _until(condition: Callable[[], bool], within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the producer's counters have no event to wait on
            await asyncio.sleep(0.05)


async def test_trades_wait_while_the_broker_is_down_and_all_arrive_after(
    healed: LocalStack, tmp_path: Path
) -> None:
    producer = _producer(healed, tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    trades = list(sample_trades(600, seed=5))
    producer.submit(trades[:200])
    await _until(lambda: producer.stats.acked == 200)

    await asyncio.to_thread(healed.fault, "broker", FaultAction.PARTITION)
    producer.submit(trades[200:])
    await _until(lambda: not producer.stats.kafka_up)
    assert producer.buffered > 0
    assert "Kafka at" in producer.stats.last_error

    await asyncio.to_thread(healed.fault, "broker", FaultAction.HEAL)
    await _until(lambda: producer.stats.acked >= 600, within=60)
    stop.set()
    await task
    assert producer.buffered == 0 and producer.stats.overflowed == 0 and producer.stats.abandoned == 0


async def test_what_does_not_fit_the_buffer_goes_to_the_dlq_with_the_reason(
    healed: LocalStack, tmp_path: Path
) -> None:
    await asyncio.to_thread(healed.fault, "registry", FaultAction.PARTITION, mode=Mode.RESET)
    producer = _producer(healed, tmp_path, buffer_limit=50)
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    producer.submit(list(sample_trades(80, seed=6)))
    await _until(lambda: producer.stats.last_error != "")
    assert not producer.stats.registry_up
    assert producer.buffered == 50 and producer.stats.overflowed == 30
    letters = list(read_dead_letters(tmp_path / "dlq"))
    assert len(letters) == 30
    assert letters[0].reason.startswith("producer buffer full (50 trades, streams.producer_buffer)")

    await asyncio.to_thread(healed.fault, "registry", FaultAction.HEAL)
    await _until(lambda: producer.stats.acked == 50)
    stop.set()
    await task


async def test_stopping_while_kafka_is_away_writes_the_unsent_trades_to_the_dlq(
    healed: LocalStack, tmp_path: Path
) -> None:
    await asyncio.to_thread(healed.fault, "broker", FaultAction.PARTITION, mode=Mode.RESET)
    producer = _producer(healed, tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop, drain_timeout=1.0))
    producer.submit(list(sample_trades(25, seed=7)))
    began = time.monotonic()
    stop.set()
    await task
    assert time.monotonic() - began < 15
    assert producer.stats.abandoned == 25
    letters = list(read_dead_letters(tmp_path / "dlq"))
    assert len(letters) == 25 and letters[0].reason.startswith("stream stopped before Kafka took this trade")
