"""Kraken WebSocket trades, v2 (``/v2``, the default) and v1 (``/``), → v2 records.

v2 sends numbers as JSON numbers, sometimes in exponent form: they are decoded straight into Decimal from
their text, never through a float, and a price sent as a string is refused (it is not v2's shape).
v1 has no trade id, so its id is the trade time plus a hash of the trade's fields: stable for the same
trade, so a repeat gets the same id (and message_id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from k2tui.ingest.fields import (
    exchange_trade_id,
    iso_time_us,
    message_id_for,
    pair_assets,
    positive_decimal,
    seconds_text_us,
    trade_time_us,
)
from k2tui.ingest.outcome import Control, ControlKind, Parsed, Rejected, Rejection
from k2tui.model.trade import ASSET_CLASS, Exchange, Side, TradeV2

V2_TRADE_KEYS = ("symbol", "side", "price", "qty", "ord_type", "trade_id", "timestamp")
V2_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
V1_SIDES = {"b": Side.BUY, "s": Side.SELL}
V1_ORDER_TYPES = {"m": "market", "l": "limit"}
_V1_SPELLING = {"BTC": "XBT", "DOGE": "XDG"}


def _kraken_trade(
    *,
    trade_id: str,
    sequence: int | None,
    pair: str,
    time_us: int,
    price: Decimal,
    quantity: Decimal,
    side: Side,
    order_type: str,
    received_us: int,
) -> TradeV2:
    base, quote = pair_assets(pair)
    return TradeV2(
        message_id=message_id_for(base + quote, trade_id),
        trade_id=trade_id,
        symbol=base + quote,
        exchange=Exchange.KRAKEN,
        asset_class=ASSET_CLASS,
        timestamp=time_us,
        price=price,
        quantity=quantity,
        side=side,
        vendor_data={"pair": pair, "base_asset": base, "quote_asset": quote, "order_type": order_type},
        sequence_number=sequence,
        ingestion_timestamp=received_us,
    )


class _KrakenProtocol:
    """What both Kraken versions share: naming, decoding with a refusal reason, and keepalive pings."""

    exchange = Exchange.KRAKEN
    name = "kraken"
    _ping_keys: tuple[str, str]
    """(the key naming the request, the key of its id): v2 says method/req_id, v1 event/reqid."""

    def __init__(self, base_url: str, symbols: tuple[str, ...], spell: Callable[[str], str]) -> None:
        self.base_url = base_url.rstrip("/")
        self.symbols = tuple(spell(s) for s in symbols)
        self._ping_id = 1000
        self._decoder = msgspec.json.Decoder()

    def keepalive_message(self) -> str | None:
        self._ping_id += 1
        kind, request_id = self._ping_keys
        return msgspec.json.encode({kind: "ping", request_id: self._ping_id}).decode()

    def _decode(self, raw: str) -> tuple[Any, Parsed | None]:
        """The message, or a Parsed refusal when it is not JSON."""
        try:
            return self._decoder.decode(raw), None
        except msgspec.DecodeError as error:
            return None, Parsed(rejections=[Rejection(f"not valid JSON ({error})", raw)])


class KrakenV2Protocol(_KrakenProtocol):
    _ping_keys = ("method", "req_id")

    def __init__(self, base_url: str, symbols: tuple[str, ...]) -> None:
        super().__init__(base_url, symbols, _v2_symbol)
        # Floats reach the hook as their exact text; ints stay int; strings stay str (and are refused).
        self._decoder = msgspec.json.Decoder(float_hook=Decimal)

    def url(self) -> str:
        return f"{self.base_url}/v2"

    def subscribe_messages(self) -> list[str]:
        request = {
            "method": "subscribe",
            "params": {"channel": "trade", "symbol": list(self.symbols), "snapshot": True},
            "req_id": 1,
        }
        return [msgspec.json.encode(request).decode()]

    def parse(self, raw: str, received_us: int) -> Parsed:
        message, refused = self._decode(raw)
        if refused is not None:
            return refused
        if not isinstance(message, dict):
            return Parsed(rejections=[Rejection("expected a JSON object from Kraken v2", raw)])
        channel = message.get("channel")
        if channel == "trade":
            return self._trades(message, raw, received_us)
        if channel == "heartbeat":
            return Parsed(controls=[Control(ControlKind.HEARTBEAT)])
        if channel == "status":
            return Parsed(controls=[Control(ControlKind.STATUS, _status_text(message))])
        method = message.get("method")
        if method == "pong":
            return Parsed(controls=[Control(ControlKind.PONG)])
        if method == "subscribe":
            return Parsed(controls=[_v2_subscription(message)])
        if method is not None:
            return Parsed(controls=[Control(ControlKind.ACK, f"{method} answered")])
        return Parsed(rejections=[Rejection("not a Kraken v2 channel message or method response", raw)])

    def _trades(self, message: dict[str, Any], raw: str, received_us: int) -> Parsed:
        data = message.get("data")
        if not isinstance(data, list) or not data:
            return Parsed(rejections=[Rejection("trade message has no trades in `data`", raw)])
        trades, rejections = [], []
        for index, item in enumerate(data):
            try:
                trades.append(_v2_trade(item, received_us))
            except Rejected as rejected:
                rejections.append(Rejection(f"trade {index + 1} of {len(data)}: {rejected}", raw))
        return Parsed(trades, rejections, snapshot=message.get("type") == "snapshot")


def _v2_trade(item: Any, received_us: int) -> TradeV2:
    if not isinstance(item, dict):
        raise Rejected("a trade must be a JSON object")
    missing = [
        k for k in ("symbol", "side", "price", "qty", "ord_type", "trade_id", "timestamp") if k not in item
    ]
    if missing:
        raise Rejected(f"missing {', '.join(missing)}")
    price, qty, trade_id = item["price"], item["qty"], item["trade_id"]
    for name, value in (("price", price), ("qty", qty)):
        if not isinstance(value, Decimal | int) or isinstance(value, bool):
            raise Rejected(f"{name} must be a JSON number in Kraken v2, got {type(value).__name__} {value!r}")
    if not isinstance(trade_id, int) or isinstance(trade_id, bool):
        raise Rejected(f"trade_id must be an integer, got {trade_id!r}")
    side = V2_SIDES.get(item["side"])
    if side is None:
        raise Rejected(f"side must be buy or sell, got {item['side']!r}")
    symbol = item["symbol"]
    if not isinstance(symbol, str) or "/" not in symbol:
        raise Rejected(f"symbol must look like BTC/USD, got {symbol!r}")
    sequence = exchange_trade_id(trade_id, "trade_id")
    return _kraken_trade(
        trade_id=f"KRAKEN-{sequence}",
        sequence=sequence,
        pair=symbol,
        time_us=trade_time_us(iso_time_us(item["timestamp"], "timestamp"), received_us, "timestamp"),
        price=positive_decimal(Decimal(price), "price"),
        quantity=positive_decimal(Decimal(qty), "qty"),
        side=side,
        order_type=str(item["ord_type"]),
        received_us=received_us,
    )


def _v2_subscription(message: dict[str, Any]) -> Control:
    if message.get("success") is False:
        symbol = message.get("symbol", "")
        return Control(
            ControlKind.SUBSCRIPTION_ERROR,
            f"Kraken refused the trade subscription for {symbol}: {message.get('error')}",
            (symbol,) if symbol else (),
        )
    result = message.get("result") or {}
    symbol = result.get("symbol", "") if isinstance(result, dict) else ""
    return Control(ControlKind.SUBSCRIBED, "trade channel", (symbol,) if symbol else ())


def _status_text(message: dict[str, Any]) -> str:
    data = message.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return f"system {data[0].get('system')}, version {data[0].get('version')}"
    return "status"


class KrakenV1Protocol(_KrakenProtocol):
    _ping_keys = ("event", "reqid")

    def __init__(self, base_url: str, symbols: tuple[str, ...]) -> None:
        super().__init__(base_url, symbols, _v1_pair)

    def url(self) -> str:
        return f"{self.base_url}/"

    def subscribe_messages(self) -> list[str]:
        request = {
            "event": "subscribe",
            "pair": list(self.symbols),
            "subscription": {"name": "trade"},
            "reqid": 1,
        }
        return [msgspec.json.encode(request).decode()]

    def parse(self, raw: str, received_us: int) -> Parsed:
        message, refused = self._decode(raw)
        if refused is not None:
            return refused
        if isinstance(message, list):
            return _v1_trades(message, raw, received_us)
        if not isinstance(message, dict):
            return Parsed(rejections=[Rejection("expected a JSON array or object from Kraken v1", raw)])
        event = message.get("event")
        if event == "heartbeat":
            return Parsed(controls=[Control(ControlKind.HEARTBEAT)])
        if event == "pong":
            return Parsed(controls=[Control(ControlKind.PONG)])
        if event == "systemStatus":
            return Parsed(controls=[Control(ControlKind.STATUS, f"system {message.get('status')}")])
        if event == "subscriptionStatus":
            return Parsed(controls=[_v1_subscription(message)])
        if event is None:
            return Parsed(rejections=[Rejection("neither a Kraken v1 event nor a trade array", raw)])
        return Parsed(rejections=[Rejection(f"unexpected Kraken v1 event {event!r}", raw)])


def _v1_subscription(message: dict[str, Any]) -> Control:
    pair = str(message.get("pair", ""))
    if message.get("status") == "subscribed":
        return Control(ControlKind.SUBSCRIBED, "trade channel", (pair,))
    if message.get("status") == "error":
        return Control(
            ControlKind.SUBSCRIPTION_ERROR,
            f"Kraken refused the trade subscription for {pair}: {message.get('errorMessage')}",
            (pair,),
        )
    return Control(ControlKind.ACK, f"subscription {message.get('status')} for {pair}")


def _v1_trades(message: list[Any], raw: str, received_us: int) -> Parsed:
    if len(message) != 4 or message[2] != "trade" or not isinstance(message[1], list):
        return Parsed(rejections=[Rejection('expected [channelID, [trades...], "trade", pair]', raw)])
    pair = message[3]
    if not isinstance(pair, str) or "/" not in pair:
        return Parsed(rejections=[Rejection(f"pair must look like XBT/USD, got {pair!r}", raw)])
    rows = message[1]
    if not rows:
        return Parsed(rejections=[Rejection("trade message has no trades", raw)])
    trades, rejections = [], []
    for index, row in enumerate(rows):
        try:
            trades.append(_v1_trade(row, pair, received_us))
        except Rejected as rejected:
            rejections.append(Rejection(f"trade {index + 1} of {len(rows)}: {rejected}", raw))
    return Parsed(trades, rejections)


def _v1_trade(row: Any, pair: str, received_us: int) -> TradeV2:
    if not isinstance(row, list) or len(row) < 5 or not all(isinstance(v, str) for v in row[:5]):
        raise Rejected("a trade must be [price, volume, time, side, orderType, misc] as strings")
    price_text, volume_text, time_text, side_code, order_code = row[:5]
    side = V1_SIDES.get(side_code)
    if side is None:
        raise Rejected(f"side must be 'b' or 's', got {side_code!r}")
    order_type = V1_ORDER_TYPES.get(order_code)
    if order_type is None:
        raise Rejected(f"orderType must be 'm' or 'l', got {order_code!r}")
    time_us = trade_time_us(seconds_text_us(time_text, "time"), received_us, "time")
    fingerprint = "|".join((pair, price_text, volume_text, time_text, side_code, order_code))
    digest = hashlib.blake2b(fingerprint.encode(), digest_size=6).hexdigest()
    return _kraken_trade(
        trade_id=f"KRAKEN-{time_us}-{digest}",
        sequence=None,
        pair=pair,
        time_us=time_us,
        price=positive_decimal(price_text, "price"),
        quantity=positive_decimal(volume_text, "volume"),
        side=side,
        order_type=order_type,
        received_us=received_us,
    )


def _v2_symbol(symbol: str) -> str:
    """Settings may say BTC/USD or BTCUSD; v2 wants BTC/USD with common names."""
    base, quote = pair_assets(symbol)
    return f"{base}/{quote}"


def _v1_pair(symbol: str) -> str:
    """v1 spells bitcoin XBT and dogecoin XDG."""
    base, quote = pair_assets(symbol)
    return f"{_V1_SPELLING.get(base, base)}/{_V1_SPELLING.get(quote, quote)}"
