"""Deterministic, realistic v2 trades for benchmarks and tests: real price levels and tick sizes."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from k2tui.model.symbols import split_symbol
from k2tui.model.trade import ASSET_CLASS, Exchange, Side, TradeV2


@dataclass(frozen=True)
class Market:
    exchange: Exchange
    pair: str
    price: Decimal
    tick: Decimal
    lot: Decimal


MARKETS: tuple[Market, ...] = (
    Market(Exchange.BINANCE, "BTCUSDT", Decimal("86414.17"), Decimal("0.01"), Decimal("0.00001")),
    Market(Exchange.BINANCE, "ETHUSDT", Decimal("3120.55"), Decimal("0.01"), Decimal("0.0001")),
    Market(Exchange.BINANCE, "SHIBUSDT", Decimal("0.00001234"), Decimal("0.00000001"), Decimal("1")),
    Market(Exchange.KRAKEN, "BTC/USD", Decimal("86393.3"), Decimal("0.1"), Decimal("0.00000001")),
    Market(Exchange.KRAKEN, "ETH/USD", Decimal("3119.87"), Decimal("0.01"), Decimal("0.00000001")),
    Market(Exchange.KRAKEN, "XDG/USD", Decimal("0.1623451"), Decimal("0.0000001"), Decimal("0.00000001")),
)
START_US = 1_795_276_800_000_000


def sample_trades(count: int, *, seed: int = 7, start_us: int = START_US) -> Iterator[TradeV2]:
    """`count` valid trades across both exchanges, with sequential trade ids per market, from `start_us`."""
    rng = random.Random(seed)
    next_id = {m.pair: 5_429_871_000 + 1000 * i for i, m in enumerate(MARKETS)}
    prices = {m.pair: m.price for m in MARKETS}
    clock = start_us
    for _ in range(count):
        market = rng.choice(MARKETS)
        clock += rng.randint(1, 5_000)
        steps = rng.randint(-3, 3)
        prices[market.pair] = max(market.tick, prices[market.pair] + steps * market.tick)
        quantity = market.lot * max(1, int(rng.paretovariate(1.2) * 50))
        trade_id = next_id[market.pair]
        next_id[market.pair] += 1
        yield _trade(market, rng, trade_id, clock, prices[market.pair], quantity)


def _trade(
    market: Market, rng: random.Random, trade_id: int, at_us: int, price: Decimal, qty: Decimal
) -> TradeV2:
    base, quote = split_symbol(market.pair)
    side = rng.choice((Side.BUY, Side.SELL))
    if market.exchange is Exchange.BINANCE:
        vendor = {
            "base_asset": base,
            "quote_asset": quote,
            "is_buyer_maker": "true" if side is Side.SELL else "false",
            "event_type": "trade",
        }
    else:
        vendor = {"pair": market.pair, "base_asset": base, "quote_asset": quote, "order_type": "limit"}
    return TradeV2(
        message_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        trade_id=f"{market.exchange.value}-{trade_id}",
        symbol=base + quote,
        exchange=market.exchange,
        asset_class=ASSET_CLASS,
        timestamp=at_us,
        price=price,
        quantity=qty,
        side=side,
        vendor_data=vendor,
        sequence_number=trade_id,
        ingestion_timestamp=at_us + rng.randint(2_000, 40_000),
    )
