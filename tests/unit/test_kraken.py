"""Kraken v2 and v1 trade messages → v2 records, against the real payload samples."""

import json
import time
from decimal import Decimal

import msgspec
import pytest

from k2tui.ingest.kraken import KrakenV1Protocol, KrakenV2Protocol
from k2tui.ingest.outcome import ControlKind
from k2tui.model.trade import Exchange, Side
from k2tui.model.validation import validate
from tests.exchange_fixtures import lines, malformed

NOW_US = time.time_ns() // 1000
V2 = KrakenV2Protocol("wss://ws.kraken.com", ("BTC/USD", "ETHUSD"))
V1 = KrakenV1Protocol("wss://ws.kraken.com", ("BTC/USD", "ETH/USD", "DOGE/USD"))
V2_TRADE_LINES = [line for line in lines("kraken_v2.jsonl") if json.loads(line).get("channel") == "trade"]
V1_TRADE_LINES = [line for line in lines("kraken_v1.jsonl") if line.startswith("[")]


def test_v2_connects_to_the_v2_path_and_subscribes_with_snapshot() -> None:
    assert V2.url() == "wss://ws.kraken.com/v2"
    [request] = V2.subscribe_messages()
    assert msgspec.json.decode(request) == {
        "method": "subscribe",
        "params": {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"], "snapshot": True},
        "req_id": 1,
    }


def test_v1_connects_to_the_root_and_spells_bitcoin_and_dogecoin_its_way() -> None:
    assert V1.url() == "wss://ws.kraken.com/"
    [request] = V1.subscribe_messages()
    assert msgspec.json.decode(request)["pair"] == ["XBT/USD", "ETH/USD", "XDG/USD"]


@pytest.mark.parametrize("line", V2_TRADE_LINES)
def test_every_v2_trade_sample_becomes_valid_v2_records(line: str) -> None:
    message = json.loads(line, parse_float=Decimal)
    parsed = V2.parse(line, NOW_US)
    assert not parsed.rejections
    assert len(parsed.trades) == len(message["data"])
    for trade, item in zip(parsed.trades, message["data"], strict=True):
        assert validate(trade) == []
        assert trade.trade_id == f"KRAKEN-{item['trade_id']}" and trade.sequence_number == item["trade_id"]
        assert trade.symbol == item["symbol"].replace("/", "")
        assert trade.exchange is Exchange.KRAKEN
        assert trade.price == item["price"] and trade.quantity == item["qty"]
        assert trade.side is (Side.BUY if item["side"] == "buy" else Side.SELL)
        assert trade.vendor_data["pair"] == item["symbol"]
        assert trade.vendor_data["order_type"] == item["ord_type"]


def test_v2_exponent_quantities_stay_exact() -> None:
    snapshot = next(line for line in V2_TRADE_LINES if '"snapshot"' in line)
    first = V2.parse(snapshot, NOW_US).trades[0]
    assert first.quantity == Decimal("0.000046738028")
    assert first.to_avro()["quantity"] == "0.000046738028"


def test_v2_timestamps_are_exact_microseconds() -> None:
    first = V2.parse(V2_TRADE_LINES[0], NOW_US).trades[0]
    assert first.timestamp == 1795276800247469  # 2026-11-21T16:00:00.247469Z


def test_v2_snapshot_and_update_both_yield_trades() -> None:
    kinds = {json.loads(line)["type"] for line in V2_TRADE_LINES}
    assert kinds == {"snapshot", "update"}
    assert all(V2.parse(line, NOW_US).trades for line in V2_TRADE_LINES)


@pytest.mark.parametrize("line", V1_TRADE_LINES)
def test_every_v1_trade_sample_becomes_valid_v2_records(line: str) -> None:
    message = json.loads(line)
    parsed = V1.parse(line, NOW_US)
    assert not parsed.rejections
    assert len(parsed.trades) == len(message[1])
    for trade, row in zip(parsed.trades, message[1], strict=True):
        assert validate(trade) == []
        assert trade.sequence_number is None
        assert trade.trade_id.startswith(f"KRAKEN-{row[2].replace('.', '')}-")
        assert trade.price == Decimal(row[0]) and trade.quantity == Decimal(row[1])
        assert trade.side is (Side.BUY if row[3] == "b" else Side.SELL)
        assert trade.vendor_data["order_type"] == {"m": "market", "l": "limit"}[row[4]]
        assert trade.vendor_data["pair"] == message[3]


def test_v1_normalises_xbt_and_xdg() -> None:
    symbols = {t.symbol for line in V1_TRADE_LINES for t in V1.parse(line, NOW_US).trades}
    assert symbols == {"BTCUSD", "ETHUSD", "DOGEUSD"}
    xbt = V1.parse(V1_TRADE_LINES[0], NOW_US).trades[0]
    assert xbt.vendor_data == {
        "pair": "XBT/USD",
        "base_asset": "BTC",
        "quote_asset": "USD",
        "order_type": "market",
    }


def test_v1_ids_are_stable_for_the_same_trade_and_differ_between_trades() -> None:
    first = [t.trade_id for t in V1.parse(V1_TRADE_LINES[0], NOW_US).trades]
    again = [t.trade_id for t in V1.parse(V1_TRADE_LINES[0], NOW_US + 1000).trades]
    assert first == again
    assert len(set(first)) == len(first)


@pytest.mark.parametrize(("case", "raw"), malformed("kraken_v2"), ids=[c for c, _ in malformed("kraken_v2")])
def test_every_v2_malformed_sample_is_refused_with_a_reason(case: str, raw: str) -> None:
    parsed = V2.parse(raw, NOW_US)
    assert not parsed.trades
    [rejection] = parsed.rejections
    assert rejection.raw == raw and len(rejection.reason) > 15


@pytest.mark.parametrize(("case", "raw"), malformed("kraken_v1"), ids=[c for c, _ in malformed("kraken_v1")])
def test_every_v1_malformed_sample_is_refused_with_a_reason(case: str, raw: str) -> None:
    parsed = V1.parse(raw, NOW_US)
    assert not parsed.trades
    [rejection] = parsed.rejections
    assert rejection.raw == raw and len(rejection.reason) > 15


@pytest.mark.parametrize(
    ("protocol", "case", "expected"),
    [
        (V2, "price as string", "trade 1 of 1: price must be a JSON number in Kraken v2, got str '86390.1'"),
        (V2, "bad timestamp", "trade 1 of 1: timestamp 'yesterday' is not an RFC 3339 time"),
        (V2, "empty data", "trade message has no trades in `data`"),
        (
            V1,
            "trade row too short",
            "trade 1 of 1: a trade must be [price, volume, time, side, orderType, misc]",
        ),
        (V1, "unknown side", "trade 1 of 1: side must be 'b' or 's', got 'x'"),
        (V1, "pair without slash", "pair must look like XBT/USD, got 'XBTUSD'"),
    ],
)
def test_the_reason_says_what_is_wrong(protocol: object, case: str, expected: str) -> None:
    raw = dict(malformed("kraken_v1", "kraken_v2"))[case]
    assert protocol.parse(raw, NOW_US).rejections[0].reason.startswith(expected)  # type: ignore[attr-defined]


def test_one_bad_trade_in_a_message_does_not_cost_the_others() -> None:
    good = {
        "symbol": "BTC/USD",
        "side": "buy",
        "price": 1.5,
        "qty": 2,
        "ord_type": "limit",
        "trade_id": 10,
        "timestamp": "2026-11-21T16:00:01.000001Z",
    }
    bad = good | {"trade_id": 11, "side": "sideways"}
    raw = json.dumps({"channel": "trade", "type": "update", "data": [good, bad, good | {"trade_id": 12}]})
    parsed = V2.parse(raw, NOW_US)
    assert [t.sequence_number for t in parsed.trades] == [10, 12]
    assert [r.reason for r in parsed.rejections] == ["trade 2 of 3: side must be buy or sell, got 'sideways'"]


def _controls(protocol: object, name: str) -> list:
    found = []
    for line in lines(name):
        parsed = protocol.parse(line, NOW_US)  # type: ignore[attr-defined]
        found.extend(parsed.controls)
    return found


def test_v2_status_acks_heartbeat_pong_and_refusal_are_recognised() -> None:
    kinds = [c.kind for c in _controls(V2, "kraken_v2.jsonl")]
    for kind in (ControlKind.STATUS, ControlKind.SUBSCRIBED, ControlKind.HEARTBEAT, ControlKind.PONG):
        assert kind in kinds
    [refusal] = [c for c in _controls(V2, "kraken_v2.jsonl") if c.kind is ControlKind.SUBSCRIPTION_ERROR]
    assert refusal.detail == "Kraken refused the trade subscription for BTC/USDX: Currency pair not supported"
    assert refusal.symbols == ("BTC/USDX",)


def test_v1_status_subscriptions_heartbeat_pong_and_refusal_are_recognised() -> None:
    controls = _controls(V1, "kraken_v1.jsonl")
    subscribed = [c.symbols[0] for c in controls if c.kind is ControlKind.SUBSCRIBED]
    assert subscribed == ["XBT/USD", "ETH/USD", "XDG/USD"]
    assert {ControlKind.STATUS, ControlKind.HEARTBEAT, ControlKind.PONG} <= {c.kind for c in controls}
    [refusal] = [c for c in controls if c.kind is ControlKind.SUBSCRIPTION_ERROR]
    assert "XBT/USDX: Currency pair not supported XBT/USDX" in refusal.detail


def test_keepalive_pings_carry_fresh_request_ids() -> None:
    first, second = (msgspec.json.decode(V2.keepalive_message() or "") for _ in range(2))
    assert first["method"] == "ping" and second["req_id"] == first["req_id"] + 1
    assert msgspec.json.decode(V1.keepalive_message() or "")["event"] == "ping"


def test_snapshot_trades_are_marked_as_history() -> None:
    kinds = {json.loads(line)["type"]: V2.parse(line, NOW_US).snapshot for line in V2_TRADE_LINES}
    assert kinds == {"snapshot": True, "update": False}
