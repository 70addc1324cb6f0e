"""Binance trade events → v2 records, against the real payload samples."""

import json
import time
from decimal import Decimal

import msgspec
import pytest

from k2tui.ingest.binance import BinanceProtocol
from k2tui.ingest.fields import message_id_for
from k2tui.ingest.outcome import ControlKind
from k2tui.model.trade import Exchange, Side
from k2tui.model.validation import validate
from tests.exchange_fixtures import lines, malformed

NOW_US = time.time_ns() // 1000
SINGLE = BinanceProtocol("wss://stream.binance.com:9443", ("BTCUSDT",))
COMBINED = BinanceProtocol("wss://stream.binance.com:9443/", ("btcusdt", "ETHUSDT"))


def _event(**fields: object) -> str:
    event = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 7, "p": "1", "q": "1", "T": 1795276800156, "m": False}
    return json.dumps(event | fields, separators=(",", ":"))


def test_one_symbol_uses_the_single_raw_stream_path() -> None:
    assert SINGLE.url() == "wss://stream.binance.com:9443/ws/btcusdt@trade"


def test_several_symbols_use_the_combined_stream_path() -> None:
    assert COMBINED.url() == "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade"


@pytest.mark.parametrize("line", lines("binance_trade.jsonl"))
def test_every_trade_sample_becomes_one_valid_v2_record(line: str) -> None:
    event = json.loads(line)
    parsed = SINGLE.parse(line, NOW_US)
    assert not parsed.rejections and not parsed.controls
    [trade] = parsed.trades
    assert validate(trade) == []
    assert trade.trade_id == f"BINANCE-{event['t']}"
    assert trade.sequence_number == event["t"]
    assert trade.symbol == "BTCUSDT" and trade.exchange is Exchange.BINANCE
    assert trade.timestamp == event["T"] * 1000
    assert trade.price == Decimal(event["p"]) and trade.quantity == Decimal(event["q"])
    assert trade.side is (Side.SELL if event["m"] else Side.BUY)
    assert trade.vendor_data == {
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "is_buyer_maker": "true" if event["m"] else "false",
        "event_type": "trade",
    }
    assert trade.ingestion_timestamp == NOW_US
    assert trade.message_id == message_id_for(trade.symbol, trade.trade_id)


@pytest.mark.parametrize("line", lines("binance_combined.jsonl"))
def test_every_combined_sample_unwraps_to_its_stream_symbol(line: str) -> None:
    wrapper = json.loads(line)
    [trade] = _combined_trades(line)
    assert trade.symbol == wrapper["stream"].split("@")[0].upper()
    assert trade.sequence_number == wrapper["data"]["t"]
    assert validate(trade) == []


def _combined_trades(line: str) -> list:
    parsed = COMBINED.parse(line, NOW_US)
    assert not parsed.rejections
    return parsed.trades


def test_legacy_order_id_fields_are_tolerated() -> None:
    legacy = next(line for line in lines("binance_trade.jsonl") if '"b":' in line)
    assert len(SINGLE.parse(legacy, NOW_US).trades) == 1


def test_prices_are_exact_decimals_never_floats() -> None:
    [trade] = SINGLE.parse(_event(p="0.10000001", q="123456789.12345678"), NOW_US).trades
    assert trade.price == Decimal("0.10000001") and trade.quantity == Decimal("123456789.12345678")
    assert trade.to_avro()["quantity"] == "123456789.12345678"


def test_the_same_trade_twice_gets_the_same_message_id() -> None:
    line = lines("binance_trade.jsonl")[0]
    first, second = SINGLE.parse(line, NOW_US).trades[0], SINGLE.parse(line, NOW_US + 5).trades[0]
    assert first.message_id == second.message_id


def test_message_ids_are_version_3_uuids_of_symbol_and_trade_id() -> None:
    import uuid

    from k2tui.ingest.fields import MESSAGE_ID_NAMESPACE

    namespace = uuid.UUID(bytes=MESSAGE_ID_NAMESPACE)
    for symbol, trade_id in (("BTCUSDT", "BINANCE-1"), ("BTCUSD", "KRAKEN-1795276800156000-0a1b2c3d4e5f")):
        assert message_id_for(symbol, trade_id) == str(uuid.uuid3(namespace, f"{symbol}/{trade_id}"))


def test_the_same_trade_id_on_two_symbols_gets_two_message_ids() -> None:
    assert message_id_for("BTCUSDT", "BINANCE-7") != message_id_for("ETHUSDT", "BINANCE-7")


@pytest.mark.parametrize(("case", "raw"), malformed("binance"), ids=[c for c, _ in malformed("binance")])
def test_every_malformed_sample_is_refused_with_a_reason(case: str, raw: str) -> None:
    parsed = SINGLE.parse(raw, NOW_US)
    assert not parsed.trades
    [rejection] = parsed.rejections
    assert rejection.raw == raw
    assert len(rejection.reason) > 15


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("negative price", "price `p` '-86412.35' must be greater than zero"),
        ("zero quantity", "quantity `q` '0.00000000' must be greater than zero"),
        ("price not a number", "price `p` 'abc' is not a decimal number"),
        ("missing trade time", "trade event is missing its trade time `T`"),
        ("truncated json", "not valid JSON"),
        ("wrong type for trade id", "trade event field trade id `t`: expected `int`, got `str`"),
        ("unknown event type", "unexpected event type 'kline'"),
        ("timestamp in the far future", "trade time `T`: 9999999999999000 is after 2100"),
        ("NaN price", "price `p` 'NaN' is not a finite number"),
    ],
)
def test_the_reason_says_what_is_wrong(case: str, expected: str) -> None:
    raw = dict(malformed("binance"))[case]
    assert SINGLE.parse(raw, NOW_US).rejections[0].reason.startswith(expected)


def test_a_trade_far_ahead_of_its_receipt_is_refused() -> None:
    [rejection] = SINGLE.parse(_event(T=NOW_US // 1000 + 3_600_000), NOW_US).rejections
    assert "3,600 s ahead of its receipt" in rejection.reason


def test_an_unknown_quote_asset_is_refused() -> None:
    [rejection] = SINGLE.parse(_event(s="BTCXYZ"), NOW_US).rejections
    assert "does not end in a known quote asset" in rejection.reason


def _control(line: str):
    parsed = COMBINED.parse(line, NOW_US)
    assert not parsed.trades and not parsed.rejections
    [control] = parsed.controls
    return control


def test_server_shutdown_is_a_planned_reconnect() -> None:
    control = _control('{"e":"serverShutdown","E":1795363200123}')
    assert control.kind is ControlKind.PLANNED_RECONNECT


def test_both_error_shapes_are_subscription_errors_with_the_message() -> None:
    control_lines = lines("binance_control.jsonl")
    plain = _control(next(line for line in control_lines if line.startswith('{"code"')))
    nested = _control(next(line for line in control_lines if line.startswith('{"error"')))
    assert plain.kind is nested.kind is ControlKind.SUBSCRIPTION_ERROR
    assert "unknown variant `SUBSCRIBEX`" in plain.detail
    assert nested.detail == "Binance rejected request 4: Invalid request: invalid stream (code 2)"


def test_list_subscriptions_confirms_the_streams() -> None:
    control = _control('{"result":["btcusdt@trade","ethusdt@trade"],"id":3}')
    assert control.kind is ControlKind.SUBSCRIBED and set(control.symbols) == {"BTCUSDT", "ETHUSDT"}


def test_a_stream_missing_from_the_list_is_named() -> None:
    control = _control('{"result":["btcusdt@trade"],"id":7301}')
    assert control.kind is ControlKind.SUBSCRIPTION_ERROR
    assert control.symbols == ("ETHUSDT",)
    assert "not streaming ethusdt@trade" in control.detail


def test_subscribe_acknowledgement_is_not_a_trade() -> None:
    assert _control('{"result":null,"id":1}').kind is ControlKind.ACK


def test_the_client_asks_which_streams_are_live() -> None:
    [request] = SINGLE.subscribe_messages()
    assert msgspec.json.decode(request) == {"method": "LIST_SUBSCRIPTIONS", "id": 7301}
