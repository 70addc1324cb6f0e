"""What parsing one exchange message yields: trades, rejections with reasons, and protocol events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from k2tui.model.trade import TradeV2


class Rejected(Exception):
    """An exchange message, or one trade in it, that cannot become a v2 record; the text says why."""


class ControlKind(StrEnum):
    SUBSCRIBED = "subscribed"
    SUBSCRIPTION_ERROR = "subscription error"
    PLANNED_RECONNECT = "planned reconnect"
    """The exchange announced it will close the connection (Binance serverShutdown)."""
    HEARTBEAT = "heartbeat"
    STATUS = "status"
    PONG = "pong"
    ACK = "ack"


@dataclass(frozen=True, slots=True)
class Control:
    kind: ControlKind
    detail: str = ""
    symbols: tuple[str, ...] = ()
    """The exchange's own symbols the event is about (subscriptions)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    raw: str


class Parsed(NamedTuple):
    """A NamedTuple, not a dataclass: one is made per message, and this is five times cheaper."""

    trades: Sequence[TradeV2] = ()
    rejections: Sequence[Rejection] = ()
    controls: Sequence[Control] = ()
    snapshot: bool = False
    """Trades from the exchange's history (Kraken's snapshot on subscribe), not live: no latency figure."""
