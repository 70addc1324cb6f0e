"""The HTTP API over a table in a local file warehouse: JSON shapes, exact decimals, 422s, health, OpenAPI."""

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from k2tui.api.app import create_app
from k2tui.api.params import endpoints
from k2tui.config import resolve_settings
from k2tui.consume.writer import LakeWriter
from k2tui.lake.query import QueryEngine
from k2tui.lake.table import (
    TRADES_V2_PARTITIONING,
    TRADES_V2_PROPERTIES,
    TRADES_V2_SCHEMA,
    TRADES_V2_SORT_ORDER,
)
from k2tui.model.samples import sample_trades
from k2tui.model.trade import TradeV2
from k2tui.stack.layout import StackLayout

TRADES = list(sample_trades(400, seed=21))
MAX_LIMIT = 50


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[QueryEngine]:
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=f"file://{tmp_path / 'w'}")
    catalog.create_namespace("market_data")
    table = catalog.create_table(
        "market_data.trades_v2",
        TRADES_V2_SCHEMA,
        partition_spec=TRADES_V2_PARTITIONING,
        sort_order=TRADES_V2_SORT_ORDER,
        properties=TRADES_V2_PROPERTIES,
    )
    writer = LakeWriter(table, "g")
    writer.append(TRADES[:200], {("t", 0): 200})
    writer.append(TRADES[200:], {("t", 0): 400})
    queries = QueryEngine(table, refresh_seconds=0)
    yield queries
    queries.close()


@pytest.fixture
async def client(engine: QueryEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(engine, max_limit=MAX_LIMIT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        yield http


def _latest(symbol: str | None = None) -> list[TradeV2]:
    chosen = [t for t in TRADES if symbol is None or t.symbol == symbol]
    return sorted(chosen, key=lambda t: t.timestamp, reverse=True)


async def test_trades_come_latest_first_with_every_field_and_exact_decimals_as_text(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/trades?table_type=TRADES&symbol=&exchange=&limit=10")
    assert response.status_code == 200
    body = response.json()
    expected = _latest()[:10]
    assert [row["message_id"] for row in body["data"]] == [t.message_id for t in expected]
    first, trade = body["data"][0], expected[0]
    assert set(first) >= set(TradeV2.__struct_fields__)
    assert isinstance(first["price"], str) and Decimal(first["price"]) == trade.price
    assert isinstance(first["quantity"], str) and Decimal(first["quantity"]) == trade.quantity
    assert first["timestamp_us"] == trade.timestamp
    assert first["timestamp"].endswith("Z") and len(first["timestamp"]) == len("2026-01-13T15:30:45.123456Z")
    assert first["ingestion_timestamp_us"] == trade.ingestion_timestamp
    assert first["vendor_data"] == trade.vendor_data
    assert first["exchange"] == trade.exchange.value and first["side"] == trade.side.value
    assert body["meta"]["count"] == 10 and body["meta"]["order"] == "desc"


async def test_no_number_in_a_trade_is_a_float(client: httpx.AsyncClient) -> None:
    text = (await client.get("/v1/trades?limit=50")).text
    assert not any(isinstance(v, float) for row in json.loads(text)["data"] for v in row.values())
    # A price as a JSON number would parse as a float: every price and quantity is quoted.
    assert '"price":"' in text and '"price":0' not in text


async def test_the_default_limit_is_applied_and_capped_by_the_setting(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/trades")).json()
    assert len(body["data"]) == MAX_LIMIT  # min(100, api.max_limit)


async def test_filters_and_order_reach_the_engine(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/trades?symbol=btc/usdt&order=asc&limit=5")).json()
    oldest = sorted((t for t in TRADES if t.symbol == "BTCUSDT"), key=lambda t: t.timestamp)[:5]
    assert [r["trade_id"] for r in body["data"]] == [t.trade_id for t in oldest]
    assert body["meta"]["filters"]["symbol"] == "BTCUSDT"


async def test_count_symbols_and_snapshots(client: httpx.AsyncClient) -> None:
    count = (await client.get("/v1/trades/count?exchange=kraken")).json()
    assert count["count"] == sum(t.exchange.value == "KRAKEN" for t in TRADES)
    symbols = (await client.get("/v1/symbols")).json()["data"]
    assert {(s["symbol"], s["trades"]) for s in symbols} == {
        (name, sum(t.symbol == name for t in TRADES)) for name in {t.symbol for t in TRADES}
    }
    snapshots = (await client.get("/v1/snapshots")).json()
    assert [s["added_records"] for s in snapshots["data"]] == [200, 200]  # newest first
    assert snapshots["data"][0]["current"] is True and snapshots["data"][0]["time"].endswith("Z")


@pytest.mark.parametrize(
    ("query", "parameter", "accepted"),
    [
        ("/v1/trades?limit=0", "limit", "an integer from 1 to 50"),
        ("/v1/trades?limit=51", "limit", "an integer from 1 to 50"),
        ("/v1/trades?limit=ten", "limit", "an integer from 1 to 50"),
        ("/v1/trades?order=sideways", "order", "one of asc, desc"),
        ("/v1/trades?order_by=side", "order_by", "one of timestamp"),
        ("/v1/trades?exchange=ftx", "exchange", "one of BINANCE, KRAKEN"),
        ("/v1/trades?symbol=BTC/", "symbol", "a trading pair"),
        ("/v1/trades?start=tomorrow", "start", "an ISO-8601 date-time"),
        ("/v1/trades?start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", "end", "a time after start"),
        ("/v1/trades?table_type=QUOTES", "table_type", "TRADES"),
        ("/v1/trades?simbol=BTCUSDT", "simbol", "a known parameter (one of table_type, symbol"),
        ("/v1/trades?symbol=BTCUSDT&symbol=ETHUSDT", "symbol", "a single value"),
        ("/v1/trades/count?limit=5", "limit", "a known parameter"),
        ("/v1/bars?interval=1m", "symbol", "a value: this parameter is required"),
        ("/v1/bars?symbol=BTCUSDT&interval=1w", "interval", "a number and a unit"),
        ("/v1/snapshots?limit=-1", "limit", "an integer from 1 to 50"),
        ("/health?verbose=1", "verbose", "no query parameters"),
    ],
)
async def test_every_bad_parameter_is_a_422_naming_it_and_the_accepted_form(
    client: httpx.AsyncClient, query: str, parameter: str, accepted: str
) -> None:
    response = await client.get(query)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_parameter"
    assert body["parameter"] == parameter
    assert body["accepted"].startswith(accepted)
    assert body["message"].startswith(f"{parameter}: expected ")


async def test_wrong_paths_and_methods_are_json_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/quotes")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    posted = await client.post("/v1/trades")
    assert posted.status_code == 405 and posted.json()["error"] == "method_not_allowed"


async def test_health_reports_each_dependency_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: d["status"] for name, d in body["dependencies"].items()} == {
        "catalog": "up",
        "object_store": "up",
    }


async def test_health_is_503_naming_the_catalog_when_it_cannot_be_reached(tmp_path: Path) -> None:
    settings = resolve_settings(
        {"home": (tmp_path, "test"), "stack.catalog_uri": (f"sqlite:///{tmp_path}/no/such/dir/c.db", "test")},
        env={},
    ).settings
    app = create_app(QueryEngine(StackLayout(settings)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        health = await http.get("/health")
        trades = await http.get("/v1/trades")
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "unavailable"
    assert body["dependencies"]["catalog"]["status"] == "down"
    assert "no/such/dir" in body["dependencies"]["catalog"]["detail"]
    assert trades.status_code == 503 and trades.json()["error"] == "lake_unavailable"


async def test_the_openapi_document_describes_every_route_and_parameter(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    for endpoint in endpoints(MAX_LIMIT):
        operation = document["paths"][endpoint.path]["get"]
        assert [p["name"] for p in operation["parameters"]] == [p.name for p in endpoint.params]
        assert {"200", "422", "503"} <= set(operation["responses"])
    limit = next(p for p in document["paths"]["/v1/trades"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == MAX_LIMIT
    trade = document["components"]["schemas"]["Trade"]["properties"]
    assert set(TradeV2.__struct_fields__) <= set(trade)
    assert trade["price"]["type"] == "string"
    for path in ("/health", "/v1/trades", "/v1/trades/count", "/v1/bars", "/v1/symbols", "/v1/snapshots"):
        assert (await client.get(path if path != "/v1/bars" else path + "?symbol=BTCUSDT")).status_code in (
            200,
            503,
        )
        assert path in document["paths"]
