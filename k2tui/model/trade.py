"""The v2 trade record as a Python type, and its conversion to and from the Avro datum."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

import msgspec


class Exchange(StrEnum):
    BINANCE = "BINANCE"
    KRAKEN = "KRAKEN"


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


ASSET_CLASS = "crypto"

VENDOR_KEYS: dict[Exchange, frozenset[str]] = {
    Exchange.BINANCE: frozenset({"base_asset", "quote_asset", "is_buyer_maker", "event_type"}),
    Exchange.KRAKEN: frozenset({"pair", "base_asset", "quote_asset", "order_type"}),
}


class TradeV2(msgspec.Struct, frozen=True, kw_only=True):
    """One normalised trade. Prices stay Decimal from the exchange's text to the lake."""

    message_id: str
    trade_id: str
    symbol: str
    exchange: Exchange
    asset_class: str
    timestamp: int
    price: Decimal
    quantity: Decimal
    side: Side
    vendor_data: dict[str, str]
    sequence_number: int | None
    ingestion_timestamp: int

    def to_avro(self) -> dict[str, Any]:
        """The datum for the Avro writer: decimals as exact text, enums as their symbols."""
        return {
            "message_id": self.message_id,
            "trade_id": self.trade_id,
            "symbol": self.symbol,
            "exchange": self.exchange.value,
            "asset_class": self.asset_class,
            "timestamp": self.timestamp,
            "price": decimal_text(self.price),
            "quantity": decimal_text(self.quantity),
            "side": self.side.value,
            "vendor_data": self.vendor_data,
            "sequence_number": self.sequence_number,
            "ingestion_timestamp": self.ingestion_timestamp,
        }

    @classmethod
    def from_avro(cls, datum: dict[str, Any]) -> TradeV2:
        """The inverse of :meth:`to_avro`. Call :func:`validate` first on untrusted data."""
        return cls(
            message_id=datum["message_id"],
            trade_id=datum["trade_id"],
            symbol=datum["symbol"],
            exchange=Exchange(datum["exchange"]),
            asset_class=datum["asset_class"],
            timestamp=datum["timestamp"],
            price=Decimal(datum["price"]),
            quantity=Decimal(datum["quantity"]),
            side=Side(datum["side"]),
            vendor_data=datum["vendor_data"],
            sequence_number=datum["sequence_number"],
            ingestion_timestamp=datum["ingestion_timestamp"],
        )


def decimal_text(value: Decimal) -> str:
    """Plain positional text (``4.6738028E-5`` → ``0.000046738028``), exact, as the wire carries it."""
    return format(value, "f")
