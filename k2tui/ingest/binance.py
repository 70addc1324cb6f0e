"""Binance spot trade streams: the URL, the subscription check, and trade events → v2 records.

One symbol connects to ``/ws/<symbol>@trade``; several to the combined ``/stream?streams=a@trade/b@trade``,
whose events arrive wrapped as ``{"stream": ..., "data": ...}``. A stream name Binance does not know
yields silence, not an error, so after connecting the client asks LIST_SUBSCRIPTIONS and compares.
"""

from __future__ import annotations

from functools import lru_cache

import msgspec

from k2tui.ingest.fields import (
    exchange_trade_id,
    message_id_for,
    pair_assets,
    positive_decimal,
    trade_time_us,
)
from k2tui.ingest.outcome import Control, ControlKind, Parsed, Rejected, Rejection
from k2tui.model.trade import ASSET_CLASS, Exchange, Side, TradeV2

LIST_REQUEST_ID = 7301


class BinanceTrade(msgspec.Struct):
    e: str
    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


class CombinedTrade(msgspec.Struct):
    stream: str
    data: BinanceTrade


_FIELD_NAMES = {
    "e": "event type `e`",
    "E": "event time `E`",
    "s": "symbol `s`",
    "t": "trade id `t`",
    "p": "price `p`",
    "q": "quantity `q`",
    "T": "trade time `T`",
    "m": "buyer-is-maker flag `m`",
}


def stream_name(symbol: str) -> str:
    return f"{symbol.lower()}@trade"


class BinanceProtocol:
    exchange = Exchange.BINANCE
    name = "binance"

    def __init__(self, base_url: str, symbols: tuple[str, ...]) -> None:
        self.base_url = base_url.rstrip("/")
        self.symbols = tuple(s.upper().replace("/", "") for s in symbols)
        self.streams = tuple(stream_name(s) for s in self.symbols)
        self.combined = len(self.streams) > 1
        self._decode = msgspec.json.Decoder(CombinedTrade if self.combined else BinanceTrade).decode
        self._generic = msgspec.json.Decoder().decode

    def url(self) -> str:
        if self.combined:
            return f"{self.base_url}/stream?streams={'/'.join(self.streams)}"
        return f"{self.base_url}/ws/{self.streams[0]}"

    def subscribe_messages(self) -> list[str]:
        return [msgspec.json.encode({"method": "LIST_SUBSCRIPTIONS", "id": LIST_REQUEST_ID}).decode()]

    def keepalive_message(self) -> str | None:
        """Binance pings at the WebSocket level; the client library answers them with the same payload."""
        return None

    def parse(self, raw: str, received_us: int) -> Parsed:
        try:
            decoded = self._decode(raw)
        except msgspec.DecodeError as error:
            return self._not_a_trade(raw, error)
        event = decoded.data if self.combined else decoded
        try:
            return Parsed(trades=[normalise_trade(event, received_us)])
        except Rejected as rejected:
            return Parsed(rejections=[Rejection(str(rejected), raw)])

    def _not_a_trade(self, raw: str, error: msgspec.DecodeError) -> Parsed:
        """The slow path: control messages, and trades that failed the typed decode."""
        try:
            message = self._generic(raw)
        except msgspec.DecodeError:
            return Parsed(rejections=[Rejection(f"not valid JSON ({error})", raw)])
        if isinstance(message, dict) and self.combined and isinstance(message.get("data"), dict):
            message = message["data"]
        if not isinstance(message, dict):
            return Parsed(rejections=[Rejection("expected a JSON object from Binance", raw)])
        control = self._control(message)
        if control is not None:
            return Parsed(controls=[control])
        if message.get("e") == "trade":
            return Parsed(rejections=[Rejection(f"trade event {_explain(error)}", raw)])
        if "e" in message:
            return Parsed(
                rejections=[Rejection(f"unexpected event type {message['e']!r}: k2tui asked for trades", raw)]
            )
        return Parsed(rejections=[Rejection("not a Binance trade, response or event", raw)])

    def _control(self, message: dict[str, object]) -> Control | None:
        if message.get("e") == "serverShutdown":
            return Control(ControlKind.PLANNED_RECONNECT, "Binance announced serverShutdown")
        error = message.get("error")
        if isinstance(error, dict):
            return _refused(f"request {message.get('id')}", error.get("msg"), error.get("code"))
        if "code" in message and "msg" in message:
            return _refused("a request", message["msg"], message["code"])
        if "result" in message and "id" in message:
            if isinstance(message["result"], list):  # only LIST_SUBSCRIPTIONS answers with a list
                return self._listed(message["result"])
            return Control(ControlKind.ACK, f"request {message['id']} done")
        return None

    def _listed(self, listed: list[object]) -> Control:
        missing = [s for s in self.streams if s not in listed]
        if missing:
            return Control(
                ControlKind.SUBSCRIPTION_ERROR,
                f"Binance is not streaming {', '.join(missing)} (check the symbols in binance.symbols)",
                tuple(s.split("@")[0].upper() for s in missing),
            )
        return Control(ControlKind.SUBSCRIBED, "streams confirmed by LIST_SUBSCRIPTIONS", self.symbols)


def _refused(what: str, why: object, code: object) -> Control:
    return Control(ControlKind.SUBSCRIPTION_ERROR, f"Binance rejected {what}: {why} (code {code})")


@lru_cache(maxsize=4096)
def _symbol_facts(symbol: str, buyer_is_maker: bool) -> tuple[str, Side, dict[str, str]]:
    """Per symbol and maker flag: v2 symbol, taker side and vendor data (shared, so never mutated)."""
    base, quote = pair_assets(symbol)
    vendor = {
        "base_asset": base,
        "quote_asset": quote,
        "is_buyer_maker": "true" if buyer_is_maker else "false",
        "event_type": "trade",
    }
    return base + quote, Side.SELL if buyer_is_maker else Side.BUY, vendor


def normalise_trade(event: BinanceTrade, received_us: int) -> TradeV2:
    if event.e != "trade":
        raise Rejected(f"unexpected event type {event.e!r}: k2tui asked for trades")
    symbol, side, vendor = _symbol_facts(event.s, event.m)
    trade_id = f"BINANCE-{exchange_trade_id(event.t, 'trade id `t`')}"
    return TradeV2(
        message_id=message_id_for(symbol, trade_id),
        trade_id=trade_id,
        symbol=symbol,
        exchange=_BINANCE,
        asset_class=ASSET_CLASS,
        timestamp=trade_time_us(event.T * 1000, received_us, "trade time `T`"),
        price=positive_decimal(event.p, "price `p`"),
        quantity=positive_decimal(event.q, "quantity `q`"),
        side=side,
        vendor_data=vendor,
        sequence_number=event.t,
        ingestion_timestamp=received_us,
    )


_BINANCE = Exchange.BINANCE


def _explain(error: msgspec.DecodeError) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.t`" in the exchange's own field names."""
    text = str(error)
    reason, _, where = text.partition(" - at `")
    path = where.rstrip("`").removeprefix("$.data").removeprefix("$").lstrip(".")
    if path in _FIELD_NAMES:
        return f"field {_FIELD_NAMES[path]}: {reason.replace('Expected', 'expected')}"
    missing = reason.removeprefix("Object missing required field `").rstrip("`")
    if missing in _FIELD_NAMES:
        return f"is missing its {_FIELD_NAMES[missing]}"
    return text
