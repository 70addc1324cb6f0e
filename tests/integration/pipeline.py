"""What the consumer tests share: producing framed trades, a consumer on a test topic, reading the lake."""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from pyiceberg.expressions import In
from pyiceberg.table import Table

from k2tui.consume.consumer import IcebergConsumer
from k2tui.ingest.dlq import DeadLetterQueue
from k2tui.model.schema import trade_v2_schema, trade_v2_schema_text
from k2tui.model.trade import TradeV2
from k2tui.model.wire import AvroEncoder
from k2tui.stack.registry.client import RegistryClient
from k2tui.stack.supervisor import LocalStack


async def produce(
    stack: LocalStack,
    topic: str,
    trades: Iterable[TradeV2],
    extra: Iterable[bytes] = (),
    key: Callable[[TradeV2], str] = lambda trade: trade.symbol,
) -> None:
    """Trades as the streams frame them (registered schema, keyed by symbol), then any raw `extra`."""
    async with framed_producer(stack, topic) as (producer, encoder):
        for trade in trades:
            await producer.send(topic, encoder.encode(trade.to_avro()), key=key(trade).encode())
        for raw in extra:
            await producer.send(topic, raw, key=b"bad")
        await producer.flush()


@asynccontextmanager
async def framed_producer(
    stack: LocalStack, topic: str
) -> AsyncIterator[tuple[AIOKafkaProducer, AvroEncoder]]:
    """A started producer to the stack's Kafka, and the encoder of the v2 schema registered for `topic`."""
    endpoints = stack.layout.endpoints
    schema_id = RegistryClient(endpoints.registry_url).register(f"{topic}-value", trade_v2_schema_text())
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield producer, AvroEncoder(schema_id, trade_v2_schema())
    finally:
        await producer.stop()


def consumer_for(stack: LocalStack, table: Table, topic: str, dlq: Path, **options: Any) -> IcebergConsumer:
    """A consumer of one test topic in a group of its own, from the beginning unless told otherwise."""
    endpoints = stack.layout.endpoints
    defaults: dict[str, Any] = {"group": f"g-{topic}", "from_beginning": True, "flush_interval": 0.5}
    return IcebergConsumer(
        bootstrap=endpoints.kafka_bootstrap,
        registry_url=endpoints.registry_url,
        table=table,
        topics=[topic],
        dlq=DeadLetterQueue(dlq, "consumer"),
        **(defaults | options),
    )


def ids_in_lake(table: Table, trades: Iterable[TradeV2] | None = None) -> Counter[str]:
    """How many times each message id is in the table (only those of `trades` when given)."""
    table.refresh()
    wanted = In("message_id", [t.message_id for t in trades]) if trades is not None else None
    scan = table.scan(selected_fields=("message_id",), **({"row_filter": wanted} if wanted else {}))
    return Counter(scan.to_arrow().column("message_id").to_pylist())


async def until(condition: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit} s: {what}")
        await asyncio.sleep(0.1)
