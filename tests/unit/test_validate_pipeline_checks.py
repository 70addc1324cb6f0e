"""Schema compliance and timestamp checks of the pipeline procedure, on hand-made stages that break them."""

import json
from dataclasses import dataclass

import msgspec

from k2tui.api.serialise import record
from k2tui.consume.writer import arrow_trades
from k2tui.lake.query import trade_row
from k2tui.lake.table import TRADES_V2_SCHEMA
from k2tui.model.samples import sample_trades
from k2tui.model.trade import TradeV2
from k2tui.validate.check import CheckStatus, Stage
from k2tui.validate.compliance import (
    api_compliance,
    api_datum,
    iceberg_rows_compliance,
    iceberg_table_schema,
    kafka_compliance,
    lake_datum,
    same_values,
)
from k2tui.validate.stages import KafkaMessage
from k2tui.validate.timestamps import api_order, api_timestamp_format, kafka_sequence_order, trade_times

TRADES = list(sample_trades(12))
NOW_US = max(t.ingestion_timestamp for t in TRADES) + 1_000_000


def as_api(trade: TradeV2) -> dict:  # type: ignore[type-arg]
    """The JSON item GET /v1/trades serves for `trade`."""
    return json.loads(json.dumps(record(trade_row(msgspec.structs.asdict(trade)))))


def message(trade: TradeV2 | None, offset: int, problem: str | None = None) -> KafkaMessage:
    return KafkaMessage("market.crypto.trades.binance", 0, offset, b"BTCUSDT", b"\0raw", trade, problem)


def messages(trades: list[TradeV2]) -> list[KafkaMessage]:
    return [message(t, offset) for offset, t in enumerate(trades)]


def test_a_corrupt_kafka_message_fails_compliance_naming_its_offset() -> None:
    window = [*messages(TRADES), message(None, 12, "does not decode (bad_magic): first byte is 0x6b")]
    result = kafka_compliance("p", window)
    assert result.status is CheckStatus.FAIL
    assert result.stage is Stage.KAFKA
    assert "1 of 13 messages" in result.detail
    assert "market.crypto.trades.binance[0]@12: does not decode (bad_magic)" in result.detail
    assert kafka_compliance("p", messages(TRADES)).status is CheckStatus.PASS


@dataclass
class FakeTable:
    schema_: object

    def schema(self) -> object:
        return self.schema_

    def name(self) -> tuple[str, str]:
        return ("market_data", "trades_v2")


def test_a_lake_table_whose_schema_drifted_fails_naming_the_column() -> None:
    drifted = TRADES_V2_SCHEMA.select("message_id", "trade_id", "symbol")
    result = iceberg_table_schema("p", FakeTable(drifted))  # type: ignore[arg-type]
    assert result.status is CheckStatus.FAIL
    assert "3 columns, the v2 schema has 12" in result.evidence
    assert iceberg_table_schema("p", FakeTable(TRADES_V2_SCHEMA)).status is CheckStatus.PASS  # type: ignore[arg-type]


def test_lake_rows_breaking_the_rules_fail_with_the_reason() -> None:
    schema = TRADES_V2_SCHEMA.as_arrow()
    good = arrow_trades(TRADES, schema)
    assert iceberg_rows_compliance("p", good).status is CheckStatus.PASS
    bad = msgspec.structs.replace(TRADES[0], asset_class="equity")
    result = iceberg_rows_compliance("p", arrow_trades([*TRADES[1:], bad], schema))
    assert result.status is CheckStatus.FAIL
    assert f"{bad.message_id}: asset_class: must be 'crypto', got 'equity'" in result.detail


def test_api_items_are_held_to_the_rules_after_converting_back() -> None:
    items = [as_api(t) for t in TRADES]
    assert api_compliance("p", items).status is CheckStatus.PASS
    items[2]["side"] = "HOLD"
    result = api_compliance("p", items)
    assert result.status is CheckStatus.FAIL
    assert result.stage is Stage.API
    assert "side" in result.detail and TRADES[2].message_id in result.detail


def test_a_value_changed_on_the_way_is_named_with_its_stage_and_field() -> None:
    lake = [lake_datum(row) for row in arrow_trades(TRADES, TRADES_V2_SCHEMA.as_arrow()).to_pylist()]
    items = [api_datum(as_api(t)) for t in TRADES]
    assert same_values("p", TRADES, lake, items).status is CheckStatus.PASS
    items[4]["price"] = "1.5"
    result = same_values("p", TRADES, lake, items)
    assert result.status is CheckStatus.FAIL
    assert result.stage is Stage.API
    assert f"api {TRADES[4].message_id}: price" in " ".join(result.evidence)


def test_api_timestamps_must_be_iso_utc_micros_and_equal_to_the_integer() -> None:
    items = [as_api(t) for t in TRADES]
    assert api_timestamp_format("p", items).status is CheckStatus.PASS
    items[0]["timestamp"] = items[0]["timestamp"][:19] + "Z"
    items[1]["timestamp_us"] += 1_000
    result = api_timestamp_format("p", items)
    assert result.status is CheckStatus.FAIL
    assert "not ISO-8601 UTC with microseconds" in result.evidence[0]
    assert result.evidence[1].endswith(
        "but the integer says " + str(items[1]["timestamp_us"]) + " (-1000 µs)"
    )


def test_a_trade_in_the_future_fails_the_future_check() -> None:
    ahead = msgspec.structs.replace(
        TRADES[0], timestamp=NOW_US + 30_000_000, ingestion_timestamp=NOW_US + 30_000_000
    )
    future, skew = trade_times("p", messages([*TRADES, ahead]), NOW_US)
    assert future.status is CheckStatus.FAIL
    assert future.detail.startswith("1 of 13 trade times are in the future, up to 30.0 s ahead")
    assert skew.status is CheckStatus.PASS


def test_ingestion_before_the_trade_time_fails_the_skew_check() -> None:
    early = msgspec.structs.replace(TRADES[0], ingestion_timestamp=TRADES[0].timestamp - 10_000_000)
    future, skew = trade_times("p", messages([*TRADES, early]), NOW_US)
    assert future.status is CheckStatus.PASS
    assert skew.status is CheckStatus.FAIL
    assert skew.detail.startswith(
        f"1 received before their trade time and 0 more than 300 s after it; first {early.trade_id}"
    )
    assert "-10.000 s after the trade" in skew.detail


def test_api_order_must_be_latest_first() -> None:
    items = sorted((as_api(t) for t in TRADES), key=lambda i: -i["timestamp_us"])
    assert api_order("p", items).status is CheckStatus.PASS
    items[3], items[4] = items[4], items[3]
    result = api_order("p", items)
    assert result.status is CheckStatus.FAIL
    assert result.detail.startswith("1 out of order, first item 4")


def test_a_symbol_sequence_falling_within_a_partition_fails() -> None:
    btc = [t for t in TRADES if t.symbol == "BTCUSDT"] or TRADES[:2]
    series = [
        msgspec.structs.replace(btc[0], message_id=f"id-{n}", sequence_number=n) for n in (10, 11, 13, 12)
    ]
    assert kafka_sequence_order("p", messages(series[:3])).status is CheckStatus.PASS
    result = kafka_sequence_order("p", messages(series))
    assert result.status is CheckStatus.FAIL
    assert "@3 " in result.detail and "sequence 12 after 13 at offset 2" in result.detail
