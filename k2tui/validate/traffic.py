"""Simulated trades flowing through the real producer into the pipeline's topics for as long as asked.

Fault scenarios need data moving while the fault is on, and afterwards the exact set of trades that
went in, to prove each one came out of the other end once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence
from pathlib import Path

import msgspec

from k2tui.config import Settings
from k2tui.ingest.dlq import DeadLetterFilter, DeadLetterQueue, collect_dead_letters, dlq_dir
from k2tui.ingest.producer import ProducerStats
from k2tui.ingest.runner import StreamReport, StreamRun, plan_sources, producer_for, stream_trades
from k2tui.model.trade import TradeV2

EXCHANGES = ("binance", "kraken")
PRODUCER_DLQ_SOURCE = "producer"
FIRST_ACK_WITHIN_S = 30.0
"""How long Kafka may take to acknowledge the first trades before starting counts as failed."""


class Traffic:
    """Both exchanges from an in-process simulator, through a TradeProducer, until `stop()`."""

    def __init__(self, settings: Settings, rate: float) -> None:
        self.settings = settings
        self.rate = rate
        self.ids: set[str] = set()
        self._producer = producer_for(settings, dlq=DeadLetterQueue(dlq_dir(settings), PRODUCER_DLQ_SOURCE))
        self._run: StreamRun | None = None
        self._task: asyncio.Task[StreamReport] | None = None

    @property
    def producer(self) -> ProducerStats:
        return self._producer.stats

    @property
    def buffered(self) -> int:
        return self._producer.buffered

    async def start(self, *, within: float = FIRST_ACK_WITHIN_S, wait_for_kafka: bool = True) -> None:
        """Start, and (unless told not to wait) return once Kafka has acknowledged the first trades."""
        plan = await plan_sources(self.settings, EXCHANGES, source="sim", fallback=False)
        self._task = asyncio.create_task(
            stream_trades(
                self.settings,
                plan,
                producer=self._producer,
                sim_rate=self.rate,
                on_trades=self._taken,
                on_run=self._keep,
            )
        )
        deadline = asyncio.get_running_loop().time() + within
        while wait_for_kafka and self.producer.acked == 0:
            if self._task.done():
                await self._task
                raise RuntimeError("the simulated streams stopped before Kafka took a trade")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"Kafka took no trade within {within:g} s: {self.producer.last_error}")
            await asyncio.sleep(0.1)

    async def stop(self) -> StreamReport:
        """Stop the streams and wait for the producer to hand Kafka (or the DLQ) what it still holds."""
        assert self._run is not None and self._task is not None
        self._run.stop()
        return await self._task

    async def abort(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def dead_lettered_ids(self) -> set[str]:
        """Message ids of this traffic's trades the producer had to put in the DLQ instead of Kafka."""
        return dead_lettered_trades(dlq_dir(self.settings), PRODUCER_DLQ_SOURCE, self.ids)

    def _taken(self, trades: Sequence[TradeV2]) -> None:
        self.ids.update(trade.message_id for trade in trades)

    def _keep(self, run: StreamRun) -> None:
        self._run = run


def dead_lettered_trades(directory: Path, source: str, ids: Collection[str]) -> set[str]:
    """Which of `ids` a producer put in the DLQ instead of Kafka (its buffer overflowed, or it stopped)."""
    wanted = set(ids)
    found = set()
    for letter in collect_dead_letters(directory, DeadLetterFilter(source=source)):
        with contextlib.suppress(msgspec.DecodeError):
            trade = msgspec.json.decode(letter.raw_bytes(), type=TradeV2)
            if trade.message_id in wanted:
                found.add(trade.message_id)
    return found
