"""Binance spot trade streams, sans I/O: what a connection has subscribed to, its replies, its trade events.

Paths, as on ``stream.binance.com``: ``/ws/<stream>[/<stream>...]`` sends raw events,
``/stream?streams=a/b`` wraps each as ``{"stream": ..., "data": ...}``; either may SUBSCRIBE more later.
Only ``<symbol>@trade`` streams of listed symbols carry data; unknown ones in the URL are ignored, as
Binance does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from k2tui.ingest.simulator.market import SimTrade

KIND = "binance"
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
INVALID_STREAM = "Invalid request: invalid stream"


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def is_binance_path(path: str) -> bool:
    route = urlsplit(path).path
    return route in ("/ws", "/stream") or route.startswith("/ws/")


def route_of(path: str) -> str:
    """The endpoint a request path names (``/ws`` or ``/stream``), for counting connections."""
    return "/stream" if urlsplit(path).path == "/stream" else "/ws"


def trade_event(trade: SimTrade, event_ms: int) -> str:
    """The raw ``trade`` event; ``m`` is true when the buyer was the maker, i.e. the taker sold."""
    maker = "true" if trade.side == "sell" else "false"
    return (
        f'{{"e":"trade","E":{event_ms},"s":"{trade.symbol_key}","t":{trade.trade_id},"p":"{trade.price:f}",'
        f'"q":"{trade.quantity:.8f}","T":{trade.time_us // 1000},"m":{maker},"M":true}}'
    )


def server_shutdown_event() -> str:
    return dumps({"e": "serverShutdown", "E": now_ms()})


class BinanceProtocol:
    """One connection's subscriptions, and its answers to SUBSCRIBE and the other requests."""

    kind = KIND

    def __init__(self, path: str, symbols: Sequence[str]) -> None:
        """`symbols` are the market's keys (``BTCUSDT``); the streams they offer are ``btcusdt@trade``."""
        split = urlsplit(path)
        self.combined = split.path == "/stream"
        self._streams = {f"{s.lower()}@trade": s for s in symbols}
        self.subscriptions: dict[str, str] = {}
        if self.combined:
            requested = "/".join(parse_qs(split.query).get("streams", []))
        else:
            requested = split.path.removeprefix("/ws").strip("/")
        for name in filter(None, requested.split("/")):
            if name in self._streams:
                self.subscriptions[name] = self._streams[name]

    def greeting(self) -> list[str]:
        return []

    def heartbeat(self) -> str | None:
        return None

    def handle(self, text: str, received_us: int) -> list[str]:
        """The replies to one client frame."""
        try:
            request = json.loads(text)
        except ValueError as error:
            return [dumps({"code": 3, "msg": f"Invalid JSON: {error}"})]
        if not isinstance(request, dict):
            return [dumps({"code": 3, "msg": "Invalid JSON: expected an object"})]
        method, request_id = request.get("method"), request.get("id")
        if method not in METHODS:
            expected = ", ".join(f"`{m}`" for m in METHODS)
            return [
                dumps(
                    {
                        "code": 2,
                        "msg": f"Invalid request: unknown variant `{method}`, expected one of {expected}",
                    }
                )
            ]
        params = request.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return [dumps({"result": list(self.subscriptions), "id": request_id})]
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return [self._property(method, params, request_id)]
        if not isinstance(params, list) or not all(isinstance(p, str) and p in self._streams for p in params):
            return [dumps({"error": {"code": 2, "msg": INVALID_STREAM}, "id": request_id})]
        for name in params:
            if method == "SUBSCRIBE":
                self.subscriptions[name] = self._streams[name]
            else:
                self.subscriptions.pop(name, None)
        return [dumps({"result": None, "id": request_id})]

    def _property(self, method: str, params: object, request_id: object) -> str:
        """Only ``combined`` exists: it switches the wrapping of events on this connection."""
        valid = isinstance(params, list) and params and params[0] == "combined"
        if method == "GET_PROPERTY" and valid and len(params) == 1:
            return dumps({"result": self.combined, "id": request_id})
        if method == "SET_PROPERTY" and valid and len(params) == 2 and isinstance(params[1], bool):
            self.combined = params[1]
            return dumps({"result": None, "id": request_id})
        return dumps({"error": {"code": 2, "msg": "Invalid request: invalid property"}, "id": request_id})

    def subscribed_keys(self) -> set[str]:
        return set(self.subscriptions.values())

    def encode(self, trades: Mapping[str, Sequence[SimTrade]]) -> list[str]:
        """One message per trade of a subscribed symbol, interleaved by trade time as Binance sends them."""
        subscribed = self.subscribed_keys()
        event_ms = now_ms()
        picked = [t for key, batch in trades.items() if key in subscribed for t in batch]
        if len(subscribed) > 1:
            picked.sort(key=lambda t: t.time_us)
        if not self.combined:
            return [trade_event(t, event_ms) for t in picked]
        return [
            f'{{"stream":"{t.symbol_key.lower()}@trade","data":{trade_event(t, event_ms)}}}' for t in picked
        ]
