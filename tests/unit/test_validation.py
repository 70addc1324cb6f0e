from decimal import Decimal
from typing import Any

import msgspec
import pytest

from k2tui.model.samples import sample_trades
from k2tui.model.trade import Exchange, TradeV2
from k2tui.model.validation import validate


def a_trade(exchange: Exchange = Exchange.BINANCE) -> TradeV2:
    return next(t for t in sample_trades(50) if t.exchange is exchange)


def as_avro(**changes: Any) -> dict[str, Any]:
    datum = a_trade().to_avro()
    datum.update(changes)
    return datum


def reasons(record: Any) -> dict[str, str]:
    return {v.field: v.reason for v in validate(record)}


def test_sample_trades_are_valid_typed_and_as_avro() -> None:
    for trade in sample_trades(2000):
        assert validate(trade) == []
        assert validate(trade.to_avro()) == []


def test_every_violation_is_reported_not_just_the_first() -> None:
    found = reasons(
        as_avro(message_id="nope", symbol="btc/usdt", price="-1", side="HOLD", asset_class="stocks")
    )
    assert set(found) == {"message_id", "symbol", "price", "side", "asset_class", "vendor_data"}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"message_id": "1234"}, "message_id", "36-character"),
        ({"message_id": "x" * 36}, "message_id", "UUID like"),
        ({"trade_id": "5429871000"}, "trade_id", "BINANCE-{t}"),
        ({"trade_id": "KRAKEN-1"}, "trade_id", "BINANCE-{t}"),
        ({"symbol": "BTC-USDT"}, "symbol", "no separator"),
        ({"symbol": "btcusdt"}, "symbol", "upper case"),
        ({"exchange": "COINBASE"}, "exchange", "BINANCE, KRAKEN"),
        ({"asset_class": "equity"}, "asset_class", "'crypto'"),
        ({"timestamp": 1795276800156}, "timestamp", "milliseconds"),
        ({"timestamp": 1795276800156000000}, "timestamp", "nanoseconds"),
        ({"timestamp": "1795276800156000"}, "timestamp", "integer"),
        ({"price": "0"}, "price", "greater than zero"),
        ({"price": "NaN"}, "price", "plain decimal text"),
        ({"price": Decimal("NaN")}, "price", "finite"),
        ({"price": "86_414.17"}, "price", "plain decimal text"),
        ({"price": " 86414.17"}, "price", "plain decimal text"),
        ({"price": "1E+999999"}, "price", "more than 20 digits before the point"),
        ({"quantity": "0.0000000000000000001"}, "quantity", "more than 18 decimal places"),
        ({"trade_id": "BINANCE-5429871000\n"}, "trade_id", "BINANCE-{t}"),
        ({"trade_id": "BINANCE-\u0665\u0664"}, "trade_id", "BINANCE-{t}"),
        ({"symbol": "BTCUSDT\n"}, "symbol", "upper case"),
        ({"sequence_number": 2**63}, "sequence_number", "2^63-1"),
        ({"price": "abc"}, "price", "decimal text"),
        ({"price": 86414.17}, "price", "never a float"),
        ({"quantity": "-0.5"}, "quantity", "greater than zero"),
        ({"side": "buy"}, "side", "BUY or SELL"),
        ({"vendor_data": {"base_asset": "BTC"}}, "vendor_data", "event_type"),
        ({"vendor_data": {"base_asset": 1}}, "vendor_data", "strings"),
        ({"sequence_number": -1}, "sequence_number", "0 to 2^63-1"),
        ({"sequence_number": 1}, "trade_id", "differs from sequence_number"),
        ({"ingestion_timestamp": 12}, "ingestion_timestamp", "before 2009"),
        ({"extra": 1}, "extra", "not a v2 field"),
    ],
)
def test_each_rule_names_the_field_and_a_plain_reason(
    changes: dict[str, Any], field: str, words: str
) -> None:
    found = reasons(as_avro(**changes))
    assert field in found, found
    assert words in found[field]


def test_missing_fields_are_listed_and_sequence_number_is_optional() -> None:
    datum = as_avro()
    del datum["price"], datum["side"], datum["sequence_number"]
    assert reasons(datum) == {"price": "missing", "side": "missing"}


def test_kraken_rules() -> None:
    kraken = a_trade(Exchange.KRAKEN).to_avro()
    assert validate(kraken) == []
    assert validate({**kraken, "trade_id": "KRAKEN-1795276801123456-9f8e7d6c", "sequence_number": None}) == []
    assert "XBT must be written BTC" in reasons({**kraken, "symbol": "XBTUSD"})["symbol"]
    assert "order_type" in reasons({**kraken, "vendor_data": {"pair": "BTC/USD"}})["vendor_data"]


def test_cross_field_rules_of_the_design() -> None:
    binance = a_trade(Exchange.BINANCE).to_avro()
    maker = binance["vendor_data"]["is_buyer_maker"]
    flipped = {"BUY": "SELL", "SELL": "BUY"}[binance["side"]]
    assert "means the taker" in reasons({**binance, "side": flipped})["vendor_data"]
    odd_flag = {**binance["vendor_data"], "is_buyer_maker": "yes"}
    assert "'true' or 'false'" in reasons({**binance, "vendor_data": odd_flag})["vendor_data"]
    assert maker in ("true", "false")
    assert "not the symbol ETHUSDT" in reasons({**binance, "symbol": "ETHUSDT"})["vendor_data"]
    kraken = a_trade(Exchange.KRAKEN).to_avro()
    assert "differs from sequence_number" in reasons({**kraken, "sequence_number": 999})["trade_id"]
    v1 = {**kraken, "trade_id": "KRAKEN-1795276801123456-9f8e7d6c", "sequence_number": 7}
    assert "must be null" in reasons(v1)["trade_id"]


def test_trade_time_far_after_ingestion_is_a_clock_or_unit_problem() -> None:
    datum = as_avro()
    datum["timestamp"] = datum["ingestion_timestamp"] + 3_600_000_000
    assert "exchange clock or the unit" in reasons(datum)["timestamp"]


def test_non_mapping_is_reported_not_raised() -> None:
    assert reasons(["not", "a", "record"]) == {"record": "expected a mapping of v2 fields, got list"}


def test_decimal_text_round_trips_exactly() -> None:
    trade = msgspec.structs.replace(a_trade(), quantity=Decimal("4.6738028e-05"), price=Decimal("0.00001234"))
    datum = trade.to_avro()
    assert datum["quantity"] == "0.000046738028"
    assert TradeV2.from_avro(datum) == trade
