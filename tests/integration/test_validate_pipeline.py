"""The stage readers of the pipeline procedure against the real stack: log ends, Kafka, the lake, the API."""

import asyncio
import time
import uuid

import msgspec
import pytest
from aiokafka import TopicPartition
from pyiceberg.table import Table

from k2tui.consume.writer import arrow_trades, carried_properties
from k2tui.lake.catalog import open_trades_table
from k2tui.model.samples import sample_trades
from k2tui.stack.supervisor import LocalStack
from k2tui.validate.offsets import log_ends
from k2tui.validate.stages import api_trades, lake_ids, read_kafka, wait_written
from tests.integration.pipeline import produce


async def test_log_ends_and_read_kafka_cover_exactly_the_window(stack: LocalStack) -> None:
    bootstrap = stack.layout.endpoints.kafka_bootstrap
    topic = f"test.pipeline.{uuid.uuid4().hex[:8]}"
    trades = list(sample_trades(5, seed=11))
    await produce(stack, topic, trades[:2])
    starts = await log_ends(bootstrap, [topic])
    assert sum(starts.values()) == 2
    await produce(stack, topic, trades[2:], extra=[b"\x00\x00\x00\x00\x01\x99 not a record"])
    ends = await log_ends(bootstrap, [topic])
    assert sum(ends.values()) == 6
    window = await read_kafka(bootstrap, stack.layout.endpoints.registry_url, starts, ends)
    read = sorted(m.trade.message_id for m in window if m.trade is not None)
    assert read == sorted(t.message_id for t in trades[2:])
    [bad] = [m for m in window if m.problem is not None]
    assert bad.problem is not None and bad.problem.startswith("does not decode (bad_body)")
    assert bad.key == b"bad" and bad.raw.endswith(b" not a record")


async def test_a_trade_keyed_by_something_else_than_its_symbol_is_flagged(stack: LocalStack) -> None:
    bootstrap = stack.layout.endpoints.kafka_bootstrap
    topic = f"test.pipeline.{uuid.uuid4().hex[:8]}"
    trade = next(iter(sample_trades(1, seed=12)))
    await produce(stack, topic, [trade], key=lambda t: "NOTASYMBOL")
    ends = await log_ends(bootstrap, [topic])
    [message] = await read_kafka(bootstrap, stack.layout.endpoints.registry_url, {}, ends)
    assert message.trade == trade
    assert message.problem == f"keyed 'NOTASYMBOL', not by its symbol {trade.symbol!r}"


async def test_wait_written_names_the_partitions_still_behind(table: Table) -> None:
    ends = {TopicPartition("t.pipeline", 0): 5, TopicPartition("t.pipeline", 1): 0}
    with pytest.raises(TimeoutError) as raised:
        await wait_written(table, "g-nobody", ends, 0.5)
    assert str(raised.value) == (
        "the lake did not record group g-nobody's offsets within 0.5 s: t.pipeline[0] at 0, 5 short of 5"
    )


async def test_api_trades_splits_full_pages_so_no_tie_is_lost(stack: LocalStack) -> None:
    """Twenty trades in an hour of 2011 nobody else writes, five of them at one microsecond, pages of 7."""
    start_us = 1_294_000_000_000_000 + uuid.uuid4().int % 1_000_000_000
    trades = list(sample_trades(20, seed=13, start_us=start_us))
    tied = [msgspec.structs.replace(t, timestamp=trades[10].timestamp) for t in trades[11:16]]
    trades = [*trades[:11], *tied, *trades[16:]]
    end_us = max(t.timestamp for t in trades) + 1
    table = open_trades_table(stack.layout)
    table.append(arrow_trades(trades, table.schema().as_arrow()), carried_properties(table))
    assert sum(lake_ids(table, [t.message_id for t in trades]).values()) == 20
    api_url = f"http://{stack.layout.settings.api.host}:{stack.layout.settings.api.port}"
    deadline = time.monotonic() + 30
    while len(seen := await api_trades(api_url, start_us, end_us, limit=7)) < 20:
        assert time.monotonic() < deadline, f"the API showed {len(seen)} of the 20 trades within 30 s"
        await asyncio.sleep(0.3)
    assert sorted(i["message_id"] for i in seen) == sorted(t.message_id for t in trades)
    times = [i["timestamp_us"] for i in seen]
    assert times == sorted(times, reverse=True)
