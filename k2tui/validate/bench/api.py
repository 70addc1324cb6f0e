"""`k2tui bench api`: latest-100 trades of a symbol through the HTTP API on a table of millions of rows.

On a throwaway stack, synthetic v2 trades (synthetic.py) are appended to ``market_data.trades_v2``
100,000 rows an append, as the consumer with tuned batching writes them, so the table has the files
and snapshots such a consumer leaves (maintenance is off, so it stays that way). Then the stack's own
API service — `k2tui api serve` as `k2tui up` runs it, a process of its own — is asked over HTTP, one
request at a time: the first latest-100 after the load (cold), a warm-up, then `requests` timed
requests of each case. The consumer service idles beside it: nothing is produced.

Every answer is checked against what was generated (the newest trade, the count), so a fast wrong
answer fails the run instead of flattering it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pyiceberg.table import Table

from k2tui.config import resolve_settings
from k2tui.ingest.stats import percentile
from k2tui.lake.catalog import ensure_trades_table, open_catalog
from k2tui.stack.layout import throwaway_overrides
from k2tui.stack.supervisor import LocalStack
from k2tui.validate.bench.result import BenchError, BenchRow
from k2tui.validate.bench.synthetic import MarketTally, SyntheticTrades

SYMBOL = "BTCUSDT"
APPEND_ROWS = 100_000
SPAN = timedelta(days=7)
WARMUP_REQUESTS = 20
P99_TARGET_MS = 100.0
LATEST = 100


@dataclass(frozen=True)
class Load:
    rows: int
    appends: int
    data_files: int
    seconds: float
    tallies: list[MarketTally]


def run_api_bench(*, rows: int, requests: int) -> list[BenchRow]:
    """Load `rows` trades on a throwaway stack, then time `requests` sequential requests of each case."""
    with tempfile.TemporaryDirectory(prefix="k2tui-bench-") as home:
        no_maintenance = dict.fromkeys(("lake.compact_every", "lake.expire_every"), (0.0, "bench api"))
        settings = resolve_settings(throwaway_overrides(Path(home)) | no_maintenance, env={}).settings
        stack = LocalStack(settings)
        try:
            stack.up()
            table, _ = ensure_trades_table(open_catalog(stack.layout))
            load = _load(table, rows)
            api = f"http://{settings.api.host}:{settings.api.port}"
            with httpx.Client(base_url=api, timeout=60) as client:
                return _measure(client, load, requests)
        finally:
            stack.down(purge=True)


def _load(table: Table, rows: int) -> Load:
    """Append `rows` synthetic trades ending now, `APPEND_ROWS` a snapshot; times the whole load."""
    end_us = time.time_ns() // 1000
    trades = SyntheticTrades(
        table.schema().as_arrow(),
        rows=rows,
        start_us=end_us - SPAN // timedelta(microseconds=1),
        end_us=end_us,
    )
    began = time.perf_counter()
    appends = 0
    while trades.remaining:
        table.append(trades.chunk(APPEND_ROWS))
        appends += 1
    seconds = time.perf_counter() - began
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None and snapshot.summary is not None else {}
    if int(summary["total-records"]) != rows:
        raise BenchError(f"the table holds {summary['total-records']} rows, not the {rows:,} appended")
    return Load(rows, appends, int(summary["total-data-files"]), seconds, trades.tallies())


def _measure(client: httpx.Client, load: Load, requests: int) -> list[BenchRow]:
    ours = [t for t in load.tallies if t.symbol == SYMBOL]
    newest_ours = max(t.newest_us or 0 for t in ours)
    newest_all = max(t.newest_us or 0 for t in load.tallies)
    latest = {"table_type": "TRADES", "symbol": SYMBOL, "limit": str(LATEST)}
    unfiltered = {"table_type": "TRADES", "limit": str(LATEST)}
    count = {"table_type": "TRADES", "symbol": SYMBOL}
    cases: dict[str, tuple[str, dict[str, str], Callable[[Any], None]]] = {
        "latest": ("/v1/trades", latest, _latest_check(newest_ours, SYMBOL)),
        "unfiltered": ("/v1/trades", unfiltered, _latest_check(newest_all, None)),
        "count": ("/v1/trades/count", count, _count_check(sum(t.trades for t in ours))),
    }
    cold = _timed(client, *cases["latest"], 1)
    for case in cases.values():
        _timed(client, *case, WARMUP_REQUESTS)
    ms = {name: _timed(client, *case, requests) for name, case in cases.items()}

    def q(name: str, quantile: float) -> float:
        value = percentile(ms[name], quantile)
        assert value is not None
        return value

    n = f"{requests:,} sequential requests"
    return [
        BenchRow(
            f"load: {load.rows:,} trades in {load.appends} appends of ≤ {APPEND_ROWS:,}",
            load.seconds,
            "s",
            note=f"{load.rows / load.seconds:,.0f} rows/s",
        ),
        BenchRow(
            f"table: data files ({SPAN.days} days, partitioned by day and exchange)",
            load.data_files,
            "files",
            note=f"{load.appends} snapshots",
        ),
        BenchRow(f"cold: first latest-{LATEST} {SYMBOL} after the load", cold[0], "ms"),
        BenchRow(f"latest-{LATEST} {SYMBOL}: p50", q("latest", 0.50), "ms", note=n),
        BenchRow(f"latest-{LATEST} {SYMBOL}: p95", q("latest", 0.95), "ms"),
        BenchRow(
            f"latest-{LATEST} {SYMBOL}: p99", q("latest", 0.99), "ms", P99_TARGET_MS, higher_is_better=False
        ),
        BenchRow(f"latest-{LATEST}, no symbol filter: p50", q("unfiltered", 0.50), "ms"),
        BenchRow(f"latest-{LATEST}, no symbol filter: p99", q("unfiltered", 0.99), "ms"),
        BenchRow(f"count of {SYMBOL} trades: p50", q("count", 0.50), "ms"),
        BenchRow(f"count of {SYMBOL} trades: p99", q("count", 0.99), "ms"),
    ]


def _timed(
    client: httpx.Client, path: str, params: dict[str, str], check: Callable[[Any], None], requests: int
) -> list[float]:
    """Milliseconds of each of `requests` GETs, request sent to body read; each answer checked after."""
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get(path, params=params)
        times.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise BenchError(f"GET {path} answered {response.status_code}: {response.text[:500]}")
        check(response.json())
    return times


def _latest_check(newest_us: int, symbol: str | None) -> Callable[[Any], None]:
    def check(body: Any) -> None:
        data = body["data"]
        if len(data) != LATEST or data[0]["timestamp_us"] != newest_us:
            raise BenchError(
                f"latest-{LATEST} of {symbol or 'all symbols'} gave {len(data)} rows, newest "
                f"{data[0]['timestamp_us'] if data else None}; the newest generated is {newest_us}"
            )
        if symbol is not None and any(row["symbol"] != symbol for row in data):
            raise BenchError(f"latest-{LATEST} of {symbol} returned other symbols")

    return check


def _count_check(expected: int) -> Callable[[Any], None]:
    def check(body: Any) -> None:
        if body["count"] != expected:
            raise BenchError(f"count of {SYMBOL} is {body['count']:,}; {expected:,} were generated")

    return check
