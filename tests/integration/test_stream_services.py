"""The stream services on the session's real stack: started on demand (with the simulator they read),
serving /stats and /metrics, producing to Kafka, switched between sources, read by the cockpit, stopped."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from k2tui.ingest.control import read_stats, set_stream_source, start_stream, stop_stream
from k2tui.ingest.runner import SIMULATED
from k2tui.ingest.topics import TOPICS
from k2tui.model.trade import Exchange
from k2tui.stack.layout import HOST
from k2tui.stack.ports import find_free_port
from k2tui.stack.supervisor import FaultAction, LocalStack, ServiceState, StackError
from k2tui.tui.stream_feed import read_streams
from k2tui.validate.check import CheckStatus
from k2tui.validate.env import ValidationEnv
from k2tui.validate.offsets import log_ends
from k2tui.validate.quiet import QuietStreams
from tests.integration.pipeline import until
from tests.integration.stack_fixture import run_k2tui


@pytest.fixture
def offline(stack: LocalStack) -> Iterator[LocalStack]:
    """The session's stack with Binance's live endpoint on a port nobody listens on (offline, as here);
    the stream services it started are stopped afterwards."""
    settings = stack.layout.settings
    dead = f"ws://{HOST}:{find_free_port()}"
    local = LocalStack(
        dataclasses.replace(settings, binance=dataclasses.replace(settings.binance, ws_url=dead))
    )
    yield local
    for name in ("binance", "simulator"):
        if any(s.name == name and s.pid is not None for s in local.status()):
            local.fault(name, FaultAction.STOP)


async def _states(stack: LocalStack) -> dict[str, ServiceState]:
    return {s.name: s.state for s in await asyncio.to_thread(stack.status)}


async def test_a_stream_service_streams_into_kafka_switches_source_and_stops(
    offline: LocalStack, stack_env: dict[str, str]
) -> None:
    stack, settings = offline, offline.layout.settings
    assert (await _states(stack))["binance"] is ServiceState.STOPPED  # on demand: `up` left it alone
    topic = TOPICS[Exchange.BINANCE]
    before = sum((await log_ends(stack.layout.endpoints.kafka_bootstrap, [topic])).values())

    # auto: the live endpoint does not answer, so it falls back to the simulator service, started first
    assert await asyncio.to_thread(start_stream, stack, "binance") == "binance: started (simulator)"
    states = await _states(stack)
    assert states["simulator"] is ServiceState.READY and states["binance"] is ServiceState.READY

    def acked() -> int:
        page = read_stats(settings, "binance")
        return 0 if page.producer is None else page.producer.acked

    await until(lambda: acked() >= 20, 20, "20 trades acknowledged by Kafka")
    page = await asyncio.to_thread(read_stats, settings, "binance")
    [stream] = page.streams
    assert (stream.name, stream.source, stream.state) == ("binance", SIMULATED, "streaming")
    assert stream.trades >= 20 and stream.latency_p99_ms is not None and len(stream.per_second) == 30
    assert page.trades and {t.exchange for t in page.trades} == {"BINANCE"}
    assert page.trades[0].time >= page.trades[-1].time  # newest first
    after = sum((await log_ends(stack.layout.endpoints.kafka_bootstrap, [topic])).values())
    assert after - before >= 20

    async with httpx.AsyncClient(timeout=5) as client:
        metrics = (await client.get(f"http://{HOST}:{settings.streams.binance_status_port}/metrics")).text
    assert 'k2_stream_trades_total{exchange="binance",source="SIMULATED"}' in metrics
    assert "k2_stream_receive_latency_seconds{" in metrics and "k2_producer_acked_total " in metrics

    snapshot = await read_streams(settings)  # what the cockpit's Streams pane draws
    binance, kraken = snapshot.view("binance"), snapshot.view("kraken")
    assert binance is not None and binance.simulated and binance.state == "streaming"
    assert kraken is not None and kraken.state == "stopped"
    assert snapshot.trades

    # a procedure that needs the topics to itself stops the running streams and starts them again
    quiet = QuietStreams(ValidationEnv(settings, stack), "test")
    stopped = await quiet.stop()
    assert (stopped.status, stopped.detail) == (CheckStatus.PASS, "stopped binance")
    assert (await _states(stack))["binance"] is ServiceState.STOPPED
    restored = await quiet.restore()
    assert (restored.status, restored.detail) == (CheckStatus.PASS, "started binance again")

    # live is what this machine cannot reach: the restart fails, saying why
    with pytest.raises(StackError, match="cannot reach binance"):
        await asyncio.to_thread(set_stream_source, stack, "binance", "live")
    assert (await _states(stack))["binance"] is ServiceState.EXITED
    # the same switch from the command line
    out = await asyncio.to_thread(run_k2tui, stack_env, "restart", "binance", "--source", "sim", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "binance: restarted with source sim (simulator)"

    assert await asyncio.to_thread(stop_stream, stack, "binance") == "binance: stopped"
    assert (await _states(stack))["binance"] is ServiceState.STOPPED
    stopped = (await read_streams(settings)).view("binance")
    assert stopped is not None and stopped.state == "stopped"
