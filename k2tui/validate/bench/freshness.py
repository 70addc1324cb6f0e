"""`k2tui bench freshness`: how long after the stream client receives a trade `GET /v1/trades` shows it.

The whole pipeline on a throwaway stack with the default settings: `k2tui stream --source sim` (the
simulator, the stream clients and the producer, in a process of their own) sends `rate` trades a second
into Kafka; the stack's consumer service writes them to Iceberg in its default batches; the stack's API
service serves them. This process only polls the API: for each symbol, the trades from the newest one
it has seen on, oldest first, paging while a page comes back full, so no trade is skipped whatever
arrives at once. A trade's freshness is the wall-clock time its first answer was read minus its
``ingestion_timestamp`` (when the stream client received it), on the same host clock.

The figures are as measured, nothing subtracted: they include up to one poll period of waiting (its
mean is reported: it is their resolution) and the request itself. Trades received in the first
`warmup` seconds (the stream process starting, the first fetches) are checked like the rest but left
out of the percentiles, which are about trades flowing steadily. After the stream stops, polling goes
on until every acknowledged trade has been seen or `DRAIN_S` passed; a trade never seen is counted.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from k2tui.config import Settings, resolve_settings, settings_as_env
from k2tui.ingest.stats import percentile
from k2tui.model.symbols import normalise_symbol
from k2tui.stack.layout import throwaway_overrides
from k2tui.stack.process import service_env
from k2tui.stack.supervisor import LocalStack
from k2tui.validate.bench.result import BenchError, BenchRow

P99_TARGET_MS = 2000.0
DRAIN_S = 30.0
PAGE = 1000
"""Rows per request: the API's default `api.max_limit`."""
STARTUP_S = 60.0
"""Allowance for the stream process to start and stop, beyond its duration."""


@dataclass(frozen=True)
class Sighting:
    received_us: int
    """The trade's ``ingestion_timestamp``: when the stream client received it."""
    freshness_ms: float


@dataclass
class Poller:
    """First sightings of trades in the API, per symbol from the newest trade time seen on."""

    client: httpx.Client
    cursors: dict[str, int | None]
    """Per symbol, the newest trade time seen (None: none yet, so from the table's first trade)."""
    sightings: dict[str, Sighting] = field(default_factory=dict)
    """By message id."""
    round_starts: list[float] = field(default_factory=list)

    def poll(self) -> None:
        """One round: every symbol once, paging while a page comes back full."""
        self.round_starts.append(time.monotonic())
        for symbol in self.cursors:
            while self._page(symbol) == PAGE:
                pass

    def mean_period_ms(self) -> float:
        """Mean time from one round's start to the next: how long a visible trade may wait to be seen."""
        starts = self.round_starts
        return (starts[-1] - starts[0]) / (len(starts) - 1) * 1000 if len(starts) > 1 else float("nan")

    def _page(self, symbol: str) -> int:
        cursor = self.cursors[symbol]
        params = {"table_type": "TRADES", "symbol": symbol, "order": "asc", "limit": str(PAGE)}
        if cursor is not None:
            params["start"] = str(cursor)
        response = self.client.get("/v1/trades", params=params)
        seen_us = time.time_ns() // 1000
        if response.status_code != 200:
            raise BenchError(f"GET /v1/trades answered {response.status_code}: {response.text[:500]}")
        data = response.json()["data"]
        for row in data:
            if row["message_id"] not in self.sightings:
                received = row["ingestion_timestamp_us"]
                self.sightings[row["message_id"]] = Sighting(received, (seen_us - received) / 1000)
        if data:
            self.cursors[symbol] = data[-1]["timestamp_us"]
        # A full page of trades all at the cursor's microsecond would never move it: stop paging then.
        return len(data) if self.cursors[symbol] != cursor else 0


@dataclass(frozen=True)
class Run:
    duration: float
    rate: float
    warmup: float
    poll_interval: float


def run_freshness_bench(
    *, duration: float, rate: float, warmup: float, poll_interval: float
) -> list[BenchRow]:
    """Stream `rate` trades/s for `duration` s through a default throwaway stack, polling its API."""
    run = Run(duration, rate, warmup, poll_interval)
    with tempfile.TemporaryDirectory(prefix="k2tui-bench-") as home:
        settings = resolve_settings(throwaway_overrides(Path(home)), env={}).settings
        stack = LocalStack(settings)
        try:
            stack.up()
            return _measure(settings, run)
        finally:
            stack.down(purge=True)


_ACKED = re.compile(r"Kafka: ([0-9,]+) of ([0-9,]+) acknowledged")
_SECONDS = re.compile(r"streams after ([0-9.]+) s")


def _measure(settings: Settings, run: Run) -> list[BenchRow]:
    symbols = [normalise_symbol(s) for s in (*settings.binance.symbols, *settings.kraken.symbols)]
    per_symbol = run.rate / len(symbols)
    command = [
        sys.executable,
        "-m",
        "k2tui",
        "stream",
        "--source=sim",
        f"--rate={per_symbol:g}",
        f"--duration={run.duration:g}",
    ]
    api = f"http://{settings.api.host}:{settings.api.port}"
    with tempfile.TemporaryFile("w+") as out, httpx.Client(base_url=api, timeout=30) as client:
        poller = Poller(client, dict.fromkeys(symbols))
        stream = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=service_env(settings_as_env(settings) | {"COLUMNS": "200"}),
        )
        try:
            deadline = time.monotonic() + run.duration + STARTUP_S
            while stream.poll() is None:
                if time.monotonic() > deadline:
                    raise BenchError("the stream process did not stop in time")
                _round(poller, run.poll_interval)
        finally:
            if stream.poll() is None:
                stream.kill()
                stream.wait()
        out.seek(0)
        text = out.read()
        if stream.returncode != 0:
            raise BenchError(f"`k2tui stream` exited {stream.returncode}:\n{text}")
        acked, seconds = _stream_figures(text)
        drain = time.monotonic() + DRAIN_S
        while len(poller.sightings) < acked and time.monotonic() < drain:
            _round(poller, run.poll_interval)
    return _rows(run, poller, acked, seconds, len(symbols))


def _round(poller: Poller, poll_interval: float) -> None:
    """A poll round, then a wait so that rounds start `poll_interval` apart (at once when late)."""
    began = time.monotonic()
    poller.poll()
    time.sleep(max(0.0, poll_interval - (time.monotonic() - began)))


def _stream_figures(text: str) -> tuple[int, float]:
    """Trades Kafka acknowledged and the stream's seconds, from `k2tui stream`'s closing report."""
    acked, seconds = _ACKED.search(text), _SECONDS.search(text)
    if acked is None or seconds is None:
        raise BenchError(f"`k2tui stream` printed no closing report:\n{text}")
    return int(acked.group(1).replace(",", "")), float(seconds.group(1))


def _rows(run: Run, poller: Poller, acked: int, seconds: float, symbols: int) -> list[BenchRow]:
    seen = list(poller.sightings.values())
    first_us = min((s.received_us for s in seen), default=0)
    steady = [s.freshness_ms for s in seen if s.received_us >= first_us + run.warmup * 1_000_000]

    def q(quantile: float) -> float:
        value = percentile(steady, quantile)
        return float("nan") if value is None else value

    case = "receipt by the stream client → in GET /v1/trades"
    per_symbol = run.rate / symbols
    return [
        BenchRow(
            "trades flowing: simulator → stream client → Kafka",
            acked / seconds,
            "trades/s",
            note=f"{per_symbol:g}/s × {symbols} symbols offered, bursty; {acked:,} acked in {seconds:.1f} s",
        ),
        BenchRow("trades seen in GET /v1/trades", len(seen), "trades", note=f"of {acked:,} acked"),
        BenchRow(
            "acked but never seen in the API", max(0, acked - len(seen)), "trades", 0, higher_is_better=False
        ),
        BenchRow(
            f"{case}: p50",
            q(0.50),
            "ms",
            note=f"{len(steady):,} trades received after a {run.warmup:g} s warm-up",
        ),
        BenchRow(f"{case}: p99", q(0.99), "ms", P99_TARGET_MS, higher_is_better=False),
        BenchRow(f"{case}: max", max(steady, default=float("nan")), "ms"),
        BenchRow(
            f"poll period, {symbols} symbols a round: mean",
            poller.mean_period_ms(),
            "ms",
            note=f"asked for {run.poll_interval * 1000:.0f} ms; the resolution of the figures above",
        ),
    ]
