"""The stream client against the simulator's fault knobs: reconnects, watchdog, gaps, replays, refusals."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from k2tui.config import Settings, StreamSettings, resolve_settings
from k2tui.ingest.client import StreamClient, SubscriptionError
from k2tui.ingest.dlq import DeadLetterQueue, read_dead_letters
from k2tui.ingest.runner import protocol_for
from k2tui.ingest.simulator import ExchangeSimulator
from k2tui.ingest.stats import StreamState
from k2tui.model.trade import TradeV2

FAST = StreamSettings(silence_timeout=1.0, backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)


@pytest.fixture
async def simulator() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(port=0, rate=50, seed=3) as running:
        yield running


def _settings(tmp_path: Path, **overrides: str) -> Settings:
    return resolve_settings(
        {"home": (tmp_path, "test"), **{k: (v, "test") for k, v in overrides.items()}}, env={}
    ).settings


class Harness:
    def __init__(self, client: StreamClient, trades: list[TradeV2]) -> None:
        self.client = client
        self.trades = trades
        self.task = asyncio.create_task(client.run())

    async def until(self, condition: Callable[[], bool], within: float = 8.0) -> None:
        async with asyncio.timeout(within):
            while not condition():
                if self.task.done():
                    self.task.result()
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.client.stop()
        await self.task


def _start(
    simulator: ExchangeSimulator,
    tmp_path: Path,
    exchange: str,
    settings: StreamSettings = FAST,
    **overrides: str,
) -> Harness:
    config = _settings(tmp_path, **overrides)
    trades: list[TradeV2] = []
    client = StreamClient(
        protocol_for(exchange, config, simulator.url),
        settings,
        trades.extend,
        dlq=DeadLetterQueue(tmp_path / "dlq", f"stream-{exchange}"),
        source="SIMULATED",
    )
    return Harness(client, trades)


@pytest.mark.parametrize("exchange", ["binance", "kraken"])
async def test_a_dropped_connection_reconnects_and_resubscribes(
    simulator: ExchangeSimulator, tmp_path: Path, exchange: str
) -> None:
    harness = _start(simulator, tmp_path, exchange)
    await harness.until(lambda: len(harness.trades) >= 5)
    simulator.drop_connections(exchange)
    await harness.until(lambda: harness.client.stats.reconnects == 1)
    before = len(harness.trades)
    await harness.until(lambda: len(harness.trades) >= before + 5)
    stats = harness.client.stats
    assert stats.state is StreamState.STREAMING
    assert stats.reconnect_reasons[-1][1] == "the connection dropped without a close frame"
    await harness.stop()


async def test_kraken_v1_streams_and_reconnects_too(simulator: ExchangeSimulator, tmp_path: Path) -> None:
    harness = _start(simulator, tmp_path, "kraken", **{"kraken.version": "v1"})
    await harness.until(lambda: len(harness.trades) >= 5)
    assert all(t.sequence_number is None and t.trade_id.count("-") == 2 for t in harness.trades)
    simulator.drop_connections("kraken")
    before = len(harness.trades)
    await harness.until(lambda: len(harness.trades) >= before + 5)
    await harness.stop()


async def test_the_silence_watchdog_reconnects_a_stalled_stream(
    simulator: ExchangeSimulator, tmp_path: Path
) -> None:
    harness = _start(simulator, tmp_path, "binance")
    await harness.until(lambda: len(harness.trades) >= 3)
    simulator.stall("binance")
    await harness.until(lambda: harness.client.stats.reconnects >= 1)
    assert "silence watchdog" in harness.client.stats.reconnect_reasons[-1][1]
    simulator.resume("binance")
    before = len(harness.trades)
    await harness.until(lambda: len(harness.trades) > before)
    await harness.stop()


async def test_kraken_is_pinged_before_the_watchdog_gives_up(tmp_path: Path) -> None:
    # No heartbeats from this simulator: only the answers to the client's pings keep the stream alive.
    async with ExchangeSimulator(port=0, rate=50, seed=3, heartbeat_interval=600) as simulator:
        harness = _start(simulator, tmp_path, "kraken")
        await harness.until(lambda: len(harness.trades) >= 3)
        simulator.set_rate(0.1)
        await asyncio.sleep(2.5)
        assert harness.client.stats.reconnects == 0
        await harness.stop()


async def test_server_shutdown_is_a_planned_reconnect_without_backoff(
    simulator: ExchangeSimulator, tmp_path: Path
) -> None:
    slow_backoff = dataclasses.replace(FAST, backoff_initial=30.0, backoff_max=60.0)
    harness = _start(simulator, tmp_path, "binance", slow_backoff)
    await harness.until(lambda: len(harness.trades) >= 3)
    simulator.server_shutdown()
    await harness.until(lambda: harness.client.stats.reconnects == 1, within=5)
    before = len(harness.trades)
    await harness.until(lambda: len(harness.trades) > before, within=5)
    assert harness.client.stats.reconnect_reasons[-1][1] == "Binance announced serverShutdown"
    await harness.stop()


async def test_the_24_hour_close_is_a_planned_reconnect(simulator: ExchangeSimulator, tmp_path: Path) -> None:
    slow_backoff = dataclasses.replace(FAST, backoff_initial=30.0, backoff_max=60.0)
    harness = _start(simulator, tmp_path, "binance", slow_backoff)
    await harness.until(lambda: len(harness.trades) >= 3)
    simulator.set_max_connection_age(0.5)
    await harness.until(lambda: harness.client.stats.reconnects >= 1, within=5)
    simulator.set_max_connection_age(None)
    before = len(harness.trades)
    await harness.until(lambda: len(harness.trades) > before, within=5)
    assert "code 1000" in harness.client.stats.reconnect_reasons[0][1]
    await harness.stop()


async def test_server_pings_are_answered_with_their_payload(tmp_path: Path) -> None:
    async with ExchangeSimulator(port=0, rate=20, binance_ping_interval=0.2) as simulator:
        harness = _start(simulator, tmp_path, "binance")
        await asyncio.sleep(1.2)
        counts = simulator.snapshot()["exchanges"]["binance"]  # type: ignore[index]
        assert counts["pongs_matched"] >= 3 and counts["pongs_matched"] == counts["pings_sent"]  # type: ignore[index]
        await harness.stop()


@pytest.mark.parametrize("exchange", ["binance", "kraken"])
async def test_skipped_trade_ids_are_counted_as_a_gap(
    simulator: ExchangeSimulator, tmp_path: Path, exchange: str
) -> None:
    harness = _start(simulator, tmp_path, exchange)
    await harness.until(lambda: len(harness.trades) >= 3)
    simulator.skip_trade_ids(exchange, 5)
    await harness.until(lambda: harness.client.stats.gap_count >= 1)
    gap = harness.client.stats.gaps[0]
    assert gap.missing == 5 and gap.resumed_at - gap.after == 6
    await harness.stop()


@pytest.mark.parametrize("exchange", ["binance", "kraken"])
async def test_a_repeated_trade_is_dropped_and_counted(
    simulator: ExchangeSimulator, tmp_path: Path, exchange: str
) -> None:
    harness = _start(simulator, tmp_path, exchange)
    await harness.until(lambda: len(harness.trades) >= 3)
    simulator.repeat_trade(exchange)
    await harness.until(lambda: harness.client.stats.duplicates >= 1)
    ids = [t.trade_id for t in harness.trades]
    assert len(ids) == len(set(ids))
    await harness.stop()


@pytest.mark.parametrize("exchange", ["binance", "kraken"])
async def test_malformed_messages_go_to_the_dlq_and_the_stream_goes_on(
    simulator: ExchangeSimulator, tmp_path: Path, exchange: str
) -> None:
    harness = _start(simulator, tmp_path, exchange)
    await harness.until(lambda: len(harness.trades) >= 3)
    sent = simulator.inject_malformed(exchange if exchange == "binance" else "kraken_v2", 50)
    await harness.until(lambda: harness.client.stats.parse_errors >= sent)
    before = len(harness.trades)
    await harness.until(lambda: len(harness.trades) > before)
    letters = list(read_dead_letters(tmp_path / "dlq"))
    assert len(letters) == sent and all(letter.reason for letter in letters)
    assert harness.client.stats.reconnects == 0
    await harness.stop()


async def test_refused_symbols_end_the_stream_with_the_exchanges_answer(
    simulator: ExchangeSimulator, tmp_path: Path
) -> None:
    harness = _start(simulator, tmp_path, "kraken", **{"kraken.symbols": "BTC/USDX"})
    with pytest.raises(SubscriptionError, match="Kraken refused the trade subscription for BTC/USDX"):
        await asyncio.wait_for(harness.task, 5)
    assert harness.client.stats.state is StreamState.FAILED


async def test_an_unknown_binance_stream_is_named_not_waited_for(
    simulator: ExchangeSimulator, tmp_path: Path
) -> None:
    harness = _start(simulator, tmp_path, "binance", **{"binance.symbols": "BTCUSDX"})
    with pytest.raises(SubscriptionError, match="not streaming btcusdx@trade"):
        await asyncio.wait_for(harness.task, 5)


async def test_stats_report_rates_latency_and_times(simulator: ExchangeSimulator, tmp_path: Path) -> None:
    harness = _start(simulator, tmp_path, "binance")
    await asyncio.sleep(2.5)
    snapshot = harness.client.stats.snapshot()
    assert snapshot.rate_1s > 0 and snapshot.rate_10s > 0
    assert snapshot.latency_p50_ms is not None and 0 <= snapshot.latency_p50_ms < 500
    assert snapshot.connect_seconds is not None and snapshot.first_trade_seconds is not None
    assert snapshot.connected_since is not None and snapshot.last_trade is not None
    await harness.stop()
    assert harness.client.stats.state is StreamState.STOPPED
