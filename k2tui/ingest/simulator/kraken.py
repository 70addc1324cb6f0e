"""Kraken WebSocket v1 (path ``/``) and v2 (path ``/v2``) trade channels, sans I/O.

Both versions read the same Kraken market, keyed by v2 names (``BTC/USD``). v1 spells bitcoin ``XBT`` and
dogecoin ``XDG`` but the simulator also takes the v2 spelling there, and echoes whichever the client sent.
v1 writes prices, volumes and times as strings; v2 writes price and qty as JSON numbers, which this module
produces from the Decimal's digits (never through a float) in the form Python's float repr would use, so
small quantities appear in exponent form (``4.6738028e-05``) as Kraken sends them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from k2tui.ingest.simulator.market import Market, SimTrade

V1_KIND = "kraken_v1"
V2_KIND = "kraken_v2"
V1_ALIASES = {"BTC": "XBT", "DOGE": "XDG"}
EXPONENT_BELOW = Decimal("0.0001")
FIRST_CHANNEL_ID = 337


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def now_us() -> int:
    return time.time_ns() // 1000


def rfc3339(time_us: int) -> str:
    """``2026-11-21T16:00:01.642674Z``: always six fractional digits, as Kraken v2 writes them."""
    seconds, micros = divmod(time_us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def json_number(value: Decimal) -> str:
    """The Decimal as a JSON number written the way a float prints, but with exactly its digits."""
    if value and abs(value) < EXPONENT_BELOW:
        _, digits, _ = value.normalize().as_tuple()
        text = "".join(map(str, digits))
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{'-' if value < 0 else ''}{mantissa}e-{-value.adjusted():02d}"
    text = format(value, "f")
    if "." not in text:
        return text + ".0"
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def v1_names(key: str) -> tuple[str, ...]:
    """The pair names v1 accepts for a market key: ``BTC/USD`` → (``XBT/USD``, ``BTC/USD``)."""
    base, _, quote = key.partition("/")
    alias = V1_ALIASES.get(base)
    return (f"{alias}/{quote}", key) if alias else (key,)


class KrakenV1Protocol:
    """One v1 connection: systemStatus, subscribe/unsubscribe per pair, ping, trade arrays, heartbeats."""

    kind = V1_KIND

    def __init__(self, market_keys: Iterable[str], connection_id: int) -> None:
        self.connection_id = connection_id
        self._pairs = {name: key for key in market_keys for name in v1_names(key)}
        self.subscriptions: dict[str, tuple[int, str]] = {}
        """Client's pair name → (channelID, market key)."""
        self._next_channel = FIRST_CHANNEL_ID

    def greeting(self) -> list[str]:
        return [
            dumps(
                {
                    "connectionID": self.connection_id,
                    "event": "systemStatus",
                    "status": "online",
                    "version": "1.9.4",
                }
            )
        ]

    def heartbeat(self) -> str | None:
        return '{"event":"heartbeat"}'

    def handle(self, text: str, received_us: int) -> list[str]:
        try:
            request = json.loads(text)
        except ValueError:
            return [dumps({"errorMessage": "Malformed request", "event": "error"})]
        if not isinstance(request, dict):
            return [dumps({"errorMessage": "Malformed request", "event": "error"})]
        event, reqid = request.get("event"), _reqid(request, "reqid")
        if event == "ping":
            return [dumps({"event": "pong", **reqid})]
        if event in ("subscribe", "unsubscribe"):
            return self._subscription(event, request, reqid)
        return [dumps({"errorMessage": "Unsupported event", "event": "error", **reqid})]

    def _subscription(self, event: str, request: dict, reqid: dict[str, object]) -> list[str]:
        subscription, pairs = request.get("subscription"), request.get("pair")
        if not isinstance(pairs, list) or not pairs or not all(isinstance(p, str) for p in pairs):
            return [self._error("Pair field must be an array", None, subscription, reqid)]
        if not isinstance(subscription, dict) or subscription.get("name") != "trade":
            return [self._error("Subscription name invalid", p, subscription, reqid) for p in pairs]
        return [self._subscribe_one(event, pair, subscription, reqid) for pair in pairs]

    def _subscribe_one(self, event: str, pair: str, subscription: dict, reqid: dict[str, object]) -> str:
        if pair not in self._pairs:
            return self._error(f"Currency pair not supported {pair}", pair, subscription, reqid)
        if event == "unsubscribe":
            if pair not in self.subscriptions:
                return self._error("Subscription Not Found", pair, subscription, reqid)
            channel_id, _ = self.subscriptions.pop(pair)
            status = "unsubscribed"
        else:
            if pair not in self.subscriptions:
                self.subscriptions[pair] = (self._next_channel, self._pairs[pair])
                self._next_channel += 1
            channel_id, _ = self.subscriptions[pair]
            status = "subscribed"
        return dumps(
            {
                "channelID": channel_id,
                "channelName": "trade",
                "event": "subscriptionStatus",
                "pair": pair,
                "status": status,
                "subscription": subscription,
                **reqid,
            }
        )

    @staticmethod
    def _error(message: str, pair: str | None, subscription: object, reqid: dict[str, object]) -> str:
        body: dict[str, object] = {"errorMessage": message, "event": "subscriptionStatus"}
        if pair is not None:
            body["pair"] = pair
        return dumps({**body, "status": "error", "subscription": subscription, **reqid})

    def subscribed_keys(self) -> set[str]:
        return {key for _, key in self.subscriptions.values()}

    def encode(self, trades: Mapping[str, Sequence[SimTrade]]) -> list[str]:
        """One array message per subscribed pair with trades in this batch."""
        messages = []
        for pair, (channel_id, key) in self.subscriptions.items():
            batch = trades.get(key)
            if batch:
                rows = ",".join(v1_row(t) for t in batch)
                messages.append(f'[{channel_id},[{rows}],"trade","{pair}"]')
        return messages


def v1_row(trade: SimTrade) -> str:
    """``["86393.41130","0.01569313","1795276800.156000","s","m",""]``: price, volume, time, side, type."""
    seconds, micros = divmod(trade.time_us, 1_000_000)
    return (
        f'["{trade.price:.5f}","{trade.quantity:.8f}","{seconds}.{micros:06d}",'
        f'"{trade.side[0]}","{trade.order_type[0]}",""]'
    )


def v2_trade(trade: SimTrade) -> str:
    return (
        f'{{"symbol":"{trade.symbol_key}","side":"{trade.side}","price":{json_number(trade.price)},'
        f'"qty":{json_number(trade.quantity)},"ord_type":"{trade.order_type}","trade_id":{trade.trade_id},'
        f'"timestamp":"{rfc3339(trade.time_us)}"}}'
    )


def v2_trades_message(kind: str, trades: Iterable[SimTrade]) -> str:
    return f'{{"channel":"trade","type":"{kind}","data":[{",".join(v2_trade(t) for t in trades)}]}}'


class KrakenV2Protocol:
    """One v2 connection: status, subscribe/unsubscribe acks, snapshot then updates, ping, heartbeats."""

    kind = V2_KIND

    def __init__(self, market: Market, connection_id: int) -> None:
        self.market = market
        self.connection_id = connection_id
        self.subscriptions: set[str] = set()

    def greeting(self) -> list[str]:
        status = {
            "api_version": "v2",
            "connection_id": self.connection_id,
            "system": "online",
            "version": "2.0.10",
        }
        return [dumps({"channel": "status", "type": "update", "data": [status]})]

    def heartbeat(self) -> str | None:
        return '{"channel":"heartbeat"}'

    def handle(self, text: str, received_us: int) -> list[str]:
        times = {"time_in": rfc3339(received_us)}
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            return [
                dumps(
                    {"error": "Malformed request", "success": False, **times, "time_out": rfc3339(now_us())}
                )
            ]
        method, req_id = request.get("method"), _reqid(request, "req_id")
        if method == "ping":
            return [dumps({"method": "pong", **req_id, **times, "time_out": rfc3339(now_us())})]
        if method in ("subscribe", "unsubscribe"):
            return self._subscription(method, request.get("params"), req_id, times)
        return [
            dumps(
                {
                    "error": f"Method not found: {method}",
                    "method": method,
                    "success": False,
                    **times,
                    "time_out": rfc3339(now_us()),
                    **req_id,
                }
            )
        ]

    def _subscription(
        self, method: str, params: object, req_id: dict[str, object], times: dict[str, str]
    ) -> list[str]:
        def error(message: str, **extra: object) -> str:
            return dumps(
                {
                    "method": method,
                    "error": message,
                    "success": False,
                    **extra,
                    **req_id,
                    **times,
                    "time_out": rfc3339(now_us()),
                }
            )

        if not isinstance(params, dict) or params.get("channel") != "trade":
            channel = params.get("channel") if isinstance(params, dict) else None
            return [error(f"Channel {channel} not supported")]
        symbols, snapshot = params.get("symbol"), params.get("snapshot", True)
        if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
            return [error("Symbol field must be an array of strings")]
        replies, fresh = [], []
        for symbol in symbols:
            if symbol not in self.market.instruments:
                replies.append(error("Currency pair not supported", symbol=symbol))
                continue
            result: dict[str, object] = {"channel": "trade", "symbol": symbol}
            if method == "subscribe":
                result = {"channel": "trade", "snapshot": bool(snapshot), "symbol": symbol}
                if symbol not in self.subscriptions:
                    fresh.append(symbol)
                self.subscriptions.add(symbol)
            else:
                self.subscriptions.discard(symbol)
            ack = {
                "method": method,
                "result": result,
                "success": True,
                **times,
                "time_out": rfc3339(now_us()),
            }
            replies.append(dumps({**ack, **req_id}))
        if snapshot and method == "subscribe":
            replies.extend(v2_trades_message("snapshot", self.market.recent(s)) for s in fresh)
        return replies

    def subscribed_keys(self) -> set[str]:
        return set(self.subscriptions)

    def encode(self, trades: Mapping[str, Sequence[SimTrade]]) -> list[str]:
        """One update message per subscribed symbol with trades in this batch."""
        return [
            v2_trades_message("update", batch)
            for key, batch in trades.items()
            if batch and key in self.subscriptions
        ]


def _reqid(request: dict, field: str) -> dict[str, object]:
    """The request id to echo, under its own field name; absent when the client sent none, as Kraken does."""
    return {field: request[field]} if field in request else {}
