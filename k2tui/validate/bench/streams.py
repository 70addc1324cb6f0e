"""`k2tui bench streams`: how fast exchange messages become v2 records, beside a naive baseline."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx

from k2tui.config import Settings, resolve_settings
from k2tui.ingest.binance import BinanceProtocol
from k2tui.ingest.kraken import KrakenV2Protocol
from k2tui.ingest.runner import SIMULATED, StreamReport, StreamRun, producer_for, protocol_for
from k2tui.ingest.stats import percentile
from k2tui.stack.layout import throwaway_overrides
from k2tui.stack.ports import find_free_port
from k2tui.stack.supervisor import LocalStack
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


SUSTAINED_TARGET = 20_000
LATENCY_P99_TARGET_MS = 50.0
OFFERED_PER_SYMBOL = 10_000  # the simulator's ceiling


def run_pipeline_bench(*, seconds: float, latency_rate: float = 1000.0) -> list[BenchRow]:
    """Simulator (its own process) → stream clients → producer → broker of a throwaway stack.

    The stack's consumer service is off: this measures the path into Kafka, and on two cores a consumer
    writing 20,000 trades a second to Iceberg takes half a core from it (16–17k/s measured with it on).
    `bench consumer` and `bench freshness` measure the path out.
    """
    with tempfile.TemporaryDirectory(prefix="k2tui-bench-") as home:
        overrides = throwaway_overrides(Path(home)) | {"consumer.service": (False, "bench")}
        settings = resolve_settings(overrides, env={}).settings
        stack = LocalStack(settings)
        port = find_free_port()
        simulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "k2tui",
                "simulate",
                "--port",
                str(port),
                "--rate",
                str(OFFERED_PER_SYMBOL),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            stack.up()
            return asyncio.run(_measure_pipeline(settings, port, seconds, latency_rate))
        finally:
            simulator.terminate()
            simulator.wait(10)
            stack.down(purge=True)


async def _measure_pipeline(
    settings: Settings, port: int, seconds: float, latency_rate: float
) -> list[BenchRow]:
    control = f"http://127.0.0.1:{port}/control"
    async with httpx.AsyncClient(timeout=5) as http:
        await _wait_for(http, control)
        symbols = len(settings.binance.symbols) + len(settings.kraken.symbols)
        offered = OFFERED_PER_SYMBOL * symbols
        sustained = await _pipeline_run(settings, port, seconds)
        per_symbol = latency_rate / symbols
        (await http.post(f"{control}/set_rate", params={"rate": per_symbol})).raise_for_status()
        steady = await _pipeline_run(settings, port, seconds)
    latencies = steady.producer.latencies_us if steady.producer else ()
    p50, p99 = (_ms(percentile(latencies, q)) for q in (0.50, 0.99))
    acked = sustained.producer.acked if sustained.producer else 0
    return [
        BenchRow(
            f"simulator → client → Kafka, {offered:,}/s offered, no consumer",
            acked / sustained.seconds,
            "trades/s",
            SUSTAINED_TARGET,
            note=f"{acked:,} acked in {sustained.seconds:.1f} s",
        ),
        BenchRow(f"receive → acked p50 at {latency_rate:,.0f} trades/s", p50, "ms"),
        BenchRow(
            f"receive → acked p99 at {latency_rate:,.0f} trades/s",
            p99,
            "ms",
            LATENCY_P99_TARGET_MS,
            higher_is_better=False,
        ),
    ]


def _ms(microseconds: float | None) -> float:
    return float("nan") if microseconds is None else microseconds / 1000


async def _wait_for(http: httpx.AsyncClient, url: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            (await http.get(url)).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _pipeline_run(settings: Settings, port: int, seconds: float) -> StreamReport:
    producer = producer_for(settings)
    url = f"ws://127.0.0.1:{port}"
    protocols = [protocol_for(exchange, settings, url) for exchange in ("binance", "kraken")]
    run = StreamRun(
        settings, protocols, sources=dict.fromkeys(("binance", "kraken"), SIMULATED), producer=producer
    )
    return await run.run(duration=seconds)
