"""The Kafka topic of each exchange's trades: in a module of its own so that readers of Kafka (the
cockpit, the validations) know the names without importing the producer and its Avro machinery."""

from __future__ import annotations

from k2tui.model.trade import Exchange

TOPICS: dict[Exchange, str] = {
    Exchange.BINANCE: "market.crypto.trades.binance",
    Exchange.KRAKEN: "market.crypto.trades.kraken",
}
