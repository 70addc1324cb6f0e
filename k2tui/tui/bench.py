"""`k2tui bench tui`: how the cockpit feels with trades flowing, measured in a real terminal.

A throwaway stack with both stream services on the simulator; `k2tui tui` runs in tmux, as a user runs
it. Three figures, each against the issue's target:

- launch → first full frame: from spawning the process until every pane on screen has its data (no
  "waiting for the first refresh"), with the stack already up; the median of a few launches, with
  1,000 trades/s flowing (the target's row) and again at 10,000/s, where the stack fills both cores;
- key press → screen updated at 10,000 trades/s offered: `?` opens the help and `?` closes it, timed
  from sending the key until the captured screen shows the change (tmux capture adds a few ms: the
  figures are upper bounds). `?` rather than escape, which terminals hold back to tell it apart from
  an escape sequence;
- the TUI process's CPU at 1,000 trades/s, as a share of one core, over a quiet window.

The offered rate is the simulator's; the rate the streams actually carried (what the panes show) is
reported next to it, read from the stream services' own /stats.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from k2tui.config import Settings, resolve_settings, settings_as_env
from k2tui.ingest.control import read_stats, start_stream
from k2tui.ingest.runner import EXCHANGES
from k2tui.ingest.stats import percentile
from k2tui.model.symbols import normalise_symbol
from k2tui.stack.layout import throwaway_overrides
from k2tui.stack.process import service_env
from k2tui.stack.supervisor import LocalStack
from k2tui.tui.launch import bring_up
from k2tui.validate.bench.result import BenchError, BenchRow
from k2tui.validate.bench.tmux import TmuxSession

SIZE = (160, 50)
WAITING = "waiting for the first refresh"
HELP_SHOWN = "escape closes this help"
KEY_P99_TARGET_MS = 100.0
CPU_TARGET_PERCENT = 30.0
FIRST_FRAME_TARGET_S = 1.5
KEY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TuiBenchRun:
    fast_rate: float
    """Trades/s offered in all while keys are timed (10,000 in the issue)."""
    slow_rate: float
    """Trades/s offered in all while the CPU is measured (1,000 in the issue)."""
    presses: int
    launches: int
    cpu_seconds: float


def run_tui_bench(run: TuiBenchRun) -> list[BenchRow]:
    with tempfile.TemporaryDirectory(prefix="k2tui-bench-") as home:
        overrides = throwaway_overrides(Path(home)) | {"streams.source": ("sim", "bench")}
        settings = resolve_settings(overrides, env={}).settings
        stack = LocalStack(settings)
        try:
            bring_up(stack, lambda service, message: None)
            for exchange in EXCHANGES:
                start_stream(stack, exchange)
            return _measure(settings, run)
        finally:
            stack.down(purge=True)


def _per_symbol(settings: Settings, rate: float) -> float:
    symbols = {normalise_symbol(s) for s in (*settings.binance.symbols, *settings.kraken.symbols)}
    return rate / len(symbols)


def _offer(settings: Settings, rate: float) -> None:
    url = f"http://127.0.0.1:{settings.streams.simulator_port}/control/set_rate"
    response = httpx.post(url, params={"rate": str(_per_symbol(settings, rate))}, timeout=10)
    if response.status_code != 200:
        raise BenchError(f"the simulator refused rate {rate:g}: {response.text}")


def _carried(settings: Settings) -> float:
    """Trades/s the stream services received over their last 10 s."""
    return sum(s.rate_10s for e in EXCHANGES for s in read_stats(settings, e).streams)


def _cockpit(settings: Settings) -> TmuxSession:
    env = service_env(settings_as_env(settings) | {"TERM": "xterm-256color", "COLORTERM": "truecolor"})
    return TmuxSession([sys.executable, "-m", "k2tui", "tui"], size=SIZE, env=env)


def _full_frame(screen: str) -> bool:
    return "Services" in screen and "Consumer" in screen and WAITING not in screen


def _measure(settings: Settings, run: TuiBenchRun) -> list[BenchRow]:
    calm = _first_frames(settings, run.slow_rate, run.launches)
    busy = _first_frames(settings, run.fast_rate, run.launches)
    session = _cockpit(settings)
    try:
        session.wait_for(_full_frame, 30, "every pane filled")
        keys = _time_keys(session, run.presses)
        fast_carried = _carried(settings)
        fast_cpu = _cpu_percent(session.pid, run.cpu_seconds)
        _offer(settings, run.slow_rate)
        time.sleep(10)  # the 10 s rates settle at the new level
        slow_carried = _carried(settings)
        slow_cpu = _cpu_percent(session.pid, run.cpu_seconds)
    finally:
        session.close()
    return _rows(run, (calm, busy), keys, (fast_carried, fast_cpu), (slow_carried, slow_cpu))


def _first_frames(settings: Settings, rate: float, launches: int) -> list[float]:
    """Seconds from spawning the cockpit until every pane on screen has its data, per launch, with `rate`
    trades/s offered."""
    _offer(settings, rate)
    time.sleep(5)  # the streams reach the offered rate and Kafka has something for every pane
    frames = []
    for _ in range(launches):
        began = time.monotonic()
        session = _cockpit(settings)
        try:
            session.wait_for(_full_frame, 30, "every pane filled")
            frames.append(time.monotonic() - began)
        finally:
            session.close()
    return frames


def _time_keys(session: TmuxSession, presses: int) -> list[float]:
    """Milliseconds from each `?` sent until the screen shows the help open (or closed again)."""
    timings = []
    for press in range(presses):
        opening = press % 2 == 0
        began = time.monotonic()
        session.send("?")
        session.wait_for(lambda s, o=opening: (HELP_SHOWN in s) == o, KEY_TIMEOUT_S, "the help toggled")
        timings.append((time.monotonic() - began) * 1000)
        time.sleep(0.05)
    return timings


def _cpu_percent(pid: int, seconds: float) -> float:
    process = psutil.Process(pid)
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return used / seconds * 100


def _q(values: list[float], quantile: float) -> float:
    value = percentile(values, quantile)
    return float("nan") if value is None else value


def _launches_note(rate: float, frames: list[float]) -> str:
    return f"{rate:,.0f}/s offered; {len(frames)} launches, slowest {max(frames):.2f} s"


def _rows(
    run: TuiBenchRun,
    first_frames: tuple[list[float], list[float]],
    keys: list[float],
    fast: tuple[float, float],
    slow: tuple[float, float],
) -> list[BenchRow]:
    fast_note = f"{run.fast_rate:,.0f}/s offered, {fast[0]:,.0f}/s carried by the streams"
    slow_note = f"{run.slow_rate:,.0f}/s offered, {slow[0]:,.0f}/s carried by the streams"
    calm, busy = first_frames
    return [
        BenchRow(
            "launch → first full frame (stack up), median",
            statistics.median(calm),
            "s",
            FIRST_FRAME_TARGET_S,
            higher_is_better=False,
            note=_launches_note(run.slow_rate, calm),
        ),
        BenchRow(
            "launch → first full frame, median",
            statistics.median(busy),
            "s",
            note=_launches_note(run.fast_rate, busy),
        ),
        BenchRow("key → screen updated: p50", _q(keys, 0.50), "ms", note=f"{len(keys)} presses; {fast_note}"),
        BenchRow(
            "key → screen updated: p99", _q(keys, 0.99), "ms", KEY_P99_TARGET_MS, higher_is_better=False
        ),
        BenchRow("TUI CPU, share of one core", fast[1], "%", note=fast_note),
        BenchRow(
            "TUI CPU, share of one core",
            slow[1],
            "%",
            CPU_TARGET_PERCENT,
            higher_is_better=False,
            note=f"{slow_note}; over {run.cpu_seconds:g} s",
        ),
    ]
