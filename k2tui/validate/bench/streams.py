"""`k2tui bench streams`: how fast exchange messages become v2 records, beside a naive baseline."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from decimal import Decimal

from k2tui.ingest.binance import BinanceProtocol
from k2tui.ingest.kraken import KrakenV2Protocol
from k2tui.validate.bench.result import BenchRow, best_rate

BINANCE_TARGET = 200_000
KRAKEN_TARGET = 100_000


def binance_messages(count: int, seed: int = 7) -> list[str]:
    """Trade events as Binance sends them, with varied prices, sizes and sides."""
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    return [
        json.dumps(
            {
                "e": "trade",
                "E": now_ms + i,
                "s": "BTCUSDT",
                "t": 5_429_871_000 + i,
                "p": f"{86_400 + rng.uniform(-50, 50):.2f}",
                "q": f"{rng.lognormvariate(-4, 1.5):.8f}",
                "T": now_ms + i,
                "m": rng.random() < 0.5,
                "M": True,
            },
            separators=(",", ":"),
        )
        for i in range(count)
    ]


def kraken_messages(count: int, trades_per_message: int = 3, seed: int = 7) -> list[str]:
    """v2 trade updates with JSON-number prices and quantities, some in exponent form."""
    rng = random.Random(seed)
    base_us = time.time_ns() // 1000
    messages = []
    for i in range(count):
        data = []
        for j in range(trades_per_message):
            n = i * trades_per_message + j
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base_us / 1e6)) + f".{n % 1_000_000:06d}Z"
            data.append(
                f'{{"symbol":"BTC/USD","side":"{rng.choice(("buy", "sell"))}",'
                f'"price":{86_400 + rng.uniform(-50, 50):.1f},"qty":{rng.lognormvariate(-5, 2):.9g},'
                f'"ord_type":"{rng.choice(("market", "limit"))}","trade_id":{104_622_300 + n},'
                f'"timestamp":"{stamp}"}}'
            )
        messages.append(f'{{"channel":"trade","type":"update","data":[{",".join(data)}]}}')
    return messages


def _cycling(messages: list[str], handle: Callable[[str], int], batch: int = 1000) -> Callable[[], int]:
    position = 0

    def run() -> int:
        nonlocal position
        done = 0
        for _ in range(batch):
            done += handle(messages[position])
            position = (position + 1) % len(messages)
        return done

    return run


def _naive(raw: str) -> int:
    """The baseline: json.loads with Decimal floats, then a dict of the trade, no checks."""
    message = json.loads(raw, parse_float=Decimal)
    items = message.get("data", [message]) if isinstance(message, dict) else []
    records = [
        {**item, "p": Decimal(item.get("p", item.get("price"))), "q": Decimal(item.get("q", item.get("qty")))}
        for item in items
    ]
    return len(records)


def run_normaliser_bench(*, messages: int, seconds: float, rounds: int) -> list[BenchRow]:
    now_us = time.time_ns() // 1000
    binance = BinanceProtocol("ws://bench", ("BTCUSDT",))
    kraken = KrakenV2Protocol("ws://bench", ("BTC/USD",))
    b_messages = binance_messages(messages)
    k_messages = kraken_messages(messages // 3 or 1)

    def normalise_binance(raw: str) -> int:
        return len(binance.parse(raw, now_us).trades)

    def normalise_kraken(raw: str) -> int:
        return len(kraken.parse(raw, now_us).trades)

    timing = {"seconds": seconds, "rounds": rounds}
    return [
        BenchRow(
            "binance normaliser (msg → v2 record)",
            best_rate(_cycling(b_messages, normalise_binance), **timing),
            "msg/s",
            BINANCE_TARGET,
        ),
        BenchRow(
            "binance naive json.loads + Decimal", best_rate(_cycling(b_messages, _naive), **timing), "msg/s"
        ),
        BenchRow(
            "kraken v2 normaliser (3 trades a message)",
            best_rate(_cycling(k_messages, normalise_kraken), **timing),
            "trades/s",
            KRAKEN_TARGET,
        ),
        BenchRow(
            "kraken v2 naive json.loads + Decimal",
            best_rate(_cycling(k_messages, _naive), **timing),
            "trades/s",
        ),
    ]
