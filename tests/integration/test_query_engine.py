"""The query engine and the HTTP API on real Iceberg tables in the stack's object store."""

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import httpx
import pytest
from msgspec.structs import replace
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from k2tui.api.app import create_app
from k2tui.consume.writer import LakeWriter
from k2tui.lake.catalog import open_catalog
from k2tui.lake.query import QueryEngine
from k2tui.lake.table import (
    TRADES_V2_PARTITIONING,
    TRADES_V2_PROPERTIES,
    TRADES_V2_SCHEMA,
    TRADES_V2_SORT_ORDER,
)
from k2tui.lake.values import UtcTimestamp
from k2tui.model.samples import START_US, sample_trades
from k2tui.model.trade import Exchange, Side, TradeV2
from k2tui.stack.ports import find_free_port
from k2tui.stack.supervisor import LocalStack
from tests.integration.stack_fixture import k2tui_env

TRADES = list(sample_trades(3000, seed=31))
CHUNKS = [TRADES[i : i + 500] for i in range(0, len(TRADES), 500)]
MINUTE = 60_000_000
BAR_START = START_US + 3600 * 1_000_000  # after every sample trade


def _bar_trades() -> list[TradeV2]:
    """DOGEUSDT trades in two minutes, priced so each bar's figures are easy to work out by hand."""
    template = next(t for t in TRADES if t.exchange is Exchange.BINANCE)
    plan = [  # (µs after BAR_START, price, quantity), deliberately out of time order
        (40_000_000, "0.30", "10"),
        (1_000_000, "0.25", "100"),
        (59_999_999, "0.28", "1.5"),
        (20_000_000, "0.21", "2"),
        (MINUTE + 5_000_000, "0.31", "7"),
    ]
    return [
        replace(
            template,
            message_id=str(uuid.uuid4()),
            trade_id=f"BINANCE-{900 + n}",
            symbol="DOGEUSDT",
            timestamp=BAR_START + offset,
            price=Decimal(price),
            quantity=Decimal(quantity),
            side=Side.BUY,
            sequence_number=900 + n,
            ingestion_timestamp=BAR_START + offset + 1000,
        )
        for n, (offset, price, quantity) in enumerate(plan)
    ]


BARS = _bar_trades()


@contextlib.contextmanager
def _new_table(stack: LocalStack) -> Iterator[Table]:
    catalog = open_catalog(stack.layout)
    name = f"market_data.query_{uuid.uuid4().hex[:8]}"
    try:
        yield catalog.create_table(
            name,
            TRADES_V2_SCHEMA,
            partition_spec=TRADES_V2_PARTITIONING,
            sort_order=TRADES_V2_SORT_ORDER,
            properties=TRADES_V2_PROPERTIES,
        )
    finally:
        with contextlib.suppress(NoSuchTableError):
            catalog.drop_table(name)


@pytest.fixture(scope="module")
def table(stack: LocalStack) -> Iterator[Table]:
    """Six appends written newest-first (so commit order is not time order) and one of bar trades."""
    with _new_table(stack) as created:
        writer = LakeWriter(created, "g")
        for n, chunk in enumerate(reversed(CHUNKS)):
            writer.append(chunk, {("t", 0): n})
        writer.append(BARS, {("t", 0): len(CHUNKS)})
        yield created


@pytest.fixture
def engine(table: Table) -> Iterator[QueryEngine]:
    queries = QueryEngine(table, refresh_seconds=0, cache_bytes=8 * 2**20)
    yield queries
    queries.close()


ALL = TRADES + BARS


def _expected(symbol=None, exchange=None, start=None, end=None) -> list[TradeV2]:  # type: ignore[no-untyped-def]
    return [
        t
        for t in ALL
        if (symbol is None or t.symbol == symbol)
        and (exchange is None or t.exchange.value == exchange)
        and (start is None or t.timestamp >= start)
        and (end is None or t.timestamp < end)
    ]


def test_latest_trades_for_a_symbol_are_exact_and_typed_as_the_v2_record(engine: QueryEngine) -> None:
    rows = engine.query_trades(symbol="BTCUSDT", limit=100, order_by="timestamp", order_direction="desc")
    expected = sorted(_expected("BTCUSDT"), key=lambda t: t.timestamp, reverse=True)[:100]
    assert [r["message_id"] for r in rows] == [t.message_id for t in expected]
    row, trade = rows[0], expected[0]
    assert list(row) == list(TradeV2.__struct_fields__)
    assert row["price"] == trade.price and isinstance(row["price"], Decimal)
    assert row["quantity"] == trade.quantity and isinstance(row["quantity"], Decimal)
    assert isinstance(row["timestamp"], datetime) and row["timestamp"].micros == trade.timestamp
    assert str(row["timestamp"]) == str(UtcTimestamp.from_micros(trade.timestamp))
    assert row["ingestion_timestamp"].micros == trade.ingestion_timestamp
    assert row["exchange"] is Exchange.BINANCE and row["side"] is trade.side
    assert row["vendor_data"] == trade.vendor_data and isinstance(row["vendor_data"], dict)
    assert row["sequence_number"] == trade.sequence_number
    assert (row["trade_id"], row["asset_class"], row["symbol"]) == (trade.trade_id, "crypto", "BTCUSDT")


def test_every_filter_order_and_limit_matches_a_brute_force_answer(engine: QueryEngine) -> None:
    rng = random.Random(5)
    times = sorted(t.timestamp for t in TRADES)
    for _ in range(25):
        symbol = rng.choice([None, "BTCUSDT", "ETHUSD", "DOGEUSD", "SHIBUSDT"])
        exchange = rng.choice([None, "BINANCE", "KRAKEN"])
        start = rng.choice([None, rng.choice(times)])
        end = rng.choice([None, rng.choice(times) + 1])
        if start is not None and end is not None and end <= start:
            start, end = end - 1, start + 1
        limit = rng.choice([1, 7, 100, 1000])
        descending = rng.random() < 0.5
        rows = engine.query_trades(
            symbol, exchange, start, end, limit=limit, order_direction="desc" if descending else "asc"
        )
        matching = _expected(symbol, exchange, start, end)
        expected = sorted(matching, key=lambda t: t.timestamp, reverse=descending)[:limit]
        case = (symbol, exchange, start, end, limit, descending)
        assert [r["message_id"] for r in rows] == [t.message_id for t in expected], case
        assert engine.count_trades(symbol, exchange, start, end) == len(matching), case


def test_ordering_by_price_gives_the_highest_prices(engine: QueryEngine) -> None:
    rows = engine.query_trades(symbol="ETHUSDT", limit=20, order_by="price")
    prices = sorted((t.price for t in _expected("ETHUSDT")), reverse=True)[:20]
    assert [r["price"] for r in rows] == prices


def test_an_absent_symbol_returns_nothing_and_counts_zero(engine: QueryEngine) -> None:
    assert engine.query_trades(symbol="XRPUSDT") == []
    assert engine.count_trades(symbol="XRPUSDT") == 0


def test_bars_are_the_hand_worked_ohlcv(engine: QueryEngine) -> None:
    bars = engine.query_bars("DOGEUSDT", "1m")
    assert [(b.start.micros, b.open, b.high, b.low, b.close, b.volume, b.trades) for b in bars] == [
        (BAR_START, *map(Decimal, ("0.25", "0.30", "0.21", "0.28", "113.5")), 4),
        (BAR_START + MINUTE, *map(Decimal, ("0.31", "0.31", "0.31", "0.31", "7")), 1),
    ]
    (hour,) = engine.query_bars("dogeusdt", "1h")
    assert (hour.open, hour.close, hour.volume, hour.trades) == (
        Decimal("0.25"),
        Decimal("0.31"),
        Decimal("120.5"),
        5,
    )
    assert [b.trades for b in engine.query_bars("DOGEUSDT", "1m", limit=1)] == [1]  # the newest bar
    assert engine.query_bars("DOGEUSDT", "1m", start=BAR_START + MINUTE)[0].open == Decimal("0.31")


def test_symbols_and_snapshots_describe_the_table(engine: QueryEngine) -> None:
    symbols = {(s.symbol, s.exchange): s for s in engine.symbols()}
    btc = symbols[("BTCUSD", Exchange.KRAKEN)]
    kraken_btc = _expected("BTCUSD")
    assert btc.trades == len(kraken_btc)
    assert btc.first.micros == min(t.timestamp for t in kraken_btc)
    assert btc.last.micros == max(t.timestamp for t in kraken_btc)
    snapshots = engine.snapshots()
    assert [s.added_records for s in snapshots] == [500] * 6 + [len(BARS)]
    assert all(s.operation == "append" and s.added_data_files for s in snapshots)
    assert snapshots[-1].current and not snapshots[0].current
    assert "k2.offsets.g" in snapshots[-1].summary


def test_a_new_append_is_seen_by_the_next_query(stack: LocalStack) -> None:
    with _new_table(stack) as table:
        LakeWriter(table, "g").append(CHUNKS[0], {("t", 0): 1})
        engine = QueryEngine(table, refresh_seconds=0)
        try:
            assert engine.count_trades() == len(CHUNKS[0])
            other = open_catalog(stack.layout).load_table(table.name())  # another process's writer
            LakeWriter(other, "g").append(BARS[:1], {("t", 0): 2})
            assert engine.count_trades() == len(CHUNKS[0]) + 1
            assert engine.query_trades(limit=1)[0]["message_id"] == BARS[0].message_id
        finally:
            engine.close()


def test_queries_more_often_than_the_refresh_interval_still_see_new_appends(stack: LocalStack) -> None:
    with _new_table(stack) as table:
        LakeWriter(table, "g").append(CHUNKS[0], {("t", 0): 1})
        engine = QueryEngine(table, refresh_seconds=0.2)
        try:
            assert engine.count_trades() == len(CHUNKS[0])
            other = open_catalog(stack.layout).load_table(table.name())
            LakeWriter(other, "g").append(BARS[:1], {("t", 0): 2})
            deadline = time.monotonic() + 3
            while engine.count_trades() == len(CHUNKS[0]) and time.monotonic() < deadline:
                time.sleep(0.02)  # a poller ten times faster than the refresh interval
            assert engine.count_trades() == len(CHUNKS[0]) + 1
        finally:
            engine.close()


async def test_the_api_serves_the_engine_over_http(engine: QueryEngine) -> None:
    app = create_app(engine, max_limit=1000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        trades = await http.get("/v1/trades?table_type=TRADES&symbol=BTCUSDT&limit=100")
        assert trades.status_code == 200
        expected = sorted(_expected("BTCUSDT"), key=lambda t: t.timestamp, reverse=True)[:100]
        data = trades.json()["data"]
        assert [r["message_id"] for r in data] == [t.message_id for t in expected]
        assert isinstance(data[0]["price"], str) and Decimal(data[0]["price"]) == expected[0].price
        count = await http.get("/v1/trades/count?symbol=BTCUSDT")
        assert count.json()["count"] == len(_expected("BTCUSDT"))
        bars = (await http.get("/v1/bars?symbol=DOGEUSDT&interval=1m")).json()["data"]
        assert [(b["open"], b["volume"]) for b in bars][:1] == [("0.25", "113.5")]
        health = await http.get("/health")
        assert health.status_code == 200 and health.json()["dependencies"]["object_store"]["status"] == "up"


def test_k2tui_api_serve_answers_on_its_port(stack: LocalStack, stack_env: dict[str, str]) -> None:
    port = find_free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "k2tui", "api", "serve", "--port", str(port)],
        env=k2tui_env(stack_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(base + "/health", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the API did not answer within 30 s"
                time.sleep(0.2)
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"
        absent = httpx.get(base + "/v1/trades?table_type=TRADES&symbol=XRPEUR&limit=5", timeout=10)
        assert absent.status_code == 200 and absent.json()["data"] == []
        too_many = httpx.get(base + "/v1/trades?limit=1001", timeout=10)
        assert too_many.status_code == 422 and too_many.json()["parameter"] == "limit"
        assert httpx.get(base + "/openapi.json", timeout=10).json()["info"]["title"] == "k2tui query API"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    assert process.returncode == 0
