"""Running exchange streams into Kafka: what `k2tui stream`, the validation suite and the TUI share.

The source is the live exchanges or the simulator. When a live endpoint cannot be reached the run says
so plainly and, only where the caller allows it, switches to the simulator, marking every figure of
that stream SIMULATED.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidURI

from k2tui.config import Settings
from k2tui.ingest.binance import BinanceProtocol
from k2tui.ingest.client import ExchangeProtocol, StreamClient
from k2tui.ingest.dlq import DeadLetterQueue, dlq_dir
from k2tui.ingest.kraken import KrakenV1Protocol, KrakenV2Protocol
from k2tui.ingest.producer import ProducerStats, TradeProducer
from k2tui.ingest.stats import StreamSnapshot
from k2tui.model.trade import TradeV2
from k2tui.stack.layout import StackLayout

EXCHANGES = ("binance", "kraken")
SIMULATED = "SIMULATED"
RECENT_TRADES = 50
"""Trades a run keeps for whoever shows a trade tape (the stream service's /stats)."""


class SourceUnreachableError(RuntimeError):
    """A live exchange endpoint cannot be reached and the caller did not allow the simulator."""


def protocol_for(exchange: str, settings: Settings, base_url: str | None = None) -> ExchangeProtocol:
    """The protocol of `exchange` at its configured endpoint, or at `base_url` (the simulator)."""
    if exchange == "binance":
        return BinanceProtocol(base_url or settings.binance.ws_url, settings.binance.symbols)
    if exchange == "kraken":
        kind = KrakenV2Protocol if settings.kraken.version == "v2" else KrakenV1Protocol
        return kind(base_url or settings.kraken.ws_url, settings.kraken.symbols)
    raise ValueError(f"unknown exchange {exchange!r}; expected one of {', '.join(EXCHANGES)}")


async def unreachable_reason(url: str, within: float) -> str | None:
    """Why a WebSocket to `url` cannot be opened, or None when it can."""
    try:
        async with connect(url, open_timeout=within, close_timeout=1):
            return None
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


@dataclass
class StreamReport:
    streams: list[StreamSnapshot]
    producer: ProducerStats | None
    seconds: float
    trades: int
    errors: list[str] = field(default_factory=list)


class StreamRun:
    """Streams of the chosen exchanges into one sink (the Kafka producer, or a callback)."""

    def __init__(
        self,
        settings: Settings,
        protocols: Sequence[ExchangeProtocol],
        *,
        sources: dict[str, str],
        producer: TradeProducer | None = None,
        on_trades: Callable[[Sequence[TradeV2]], None] | None = None,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.on_trades = on_trades
        self.trades = 0
        self.recent: deque[TradeV2] = deque(maxlen=RECENT_TRADES)
        self._enough = asyncio.Event()
        self._max_trades: int | None = None
        self.clients = [
            StreamClient(
                protocol,
                settings.streams,
                self._sink,
                dlq=DeadLetterQueue(dlq_dir(settings), f"stream-{protocol.name}"),
                source=sources.get(protocol.name, "live"),
                on_event=on_event,
            )
            for protocol in protocols
        ]

    def _sink(self, trades: Sequence[TradeV2]) -> None:
        self.trades += len(trades)
        self.recent.extend(trades[-RECENT_TRADES:])
        if self.producer is not None:
            self.producer.submit(trades)
        if self.on_trades is not None:
            self.on_trades(trades)
        if self._max_trades is not None and self.trades >= self._max_trades:
            self._enough.set()

    def stop(self) -> None:
        self._enough.set()

    async def run(self, *, max_trades: int | None = None, duration: float | None = None) -> StreamReport:
        """Stream until `max_trades`, `duration`, stop(), or every stream failed."""
        self._max_trades = max_trades
        began = time.monotonic()
        producer_stop = asyncio.Event()
        producer_task = (
            asyncio.create_task(self.producer.run(producer_stop)) if self.producer is not None else None
        )
        client_tasks = [asyncio.create_task(client.run()) for client in self.clients]
        enough = asyncio.create_task(self._enough.wait())
        try:
            waiting = {enough, *client_tasks}
            deadline = None if duration is None else began + duration
            while waiting - {enough} and not enough.done():
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                done, waiting = await asyncio.wait(
                    waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    break
        finally:
            enough.cancel()
            for client in self.clients:
                client.stop()
            results = await asyncio.gather(*client_tasks, return_exceptions=True)
            producer_stop.set()
            if producer_task is not None:
                await producer_task
        return StreamReport(
            streams=[c.stats.snapshot() for c in self.clients],
            producer=self.producer.stats if self.producer is not None else None,
            seconds=time.monotonic() - began,
            trades=self.trades,
            errors=[str(result) for result in results if isinstance(result, Exception)],
        )


def producer_for(settings: Settings, *, dlq: DeadLetterQueue | None = None) -> TradeProducer:
    """A producer into the stack's Kafka and registry, sized by the stream settings."""
    endpoints = StackLayout(settings).endpoints
    return TradeProducer(
        endpoints.kafka_bootstrap,
        endpoints.registry_url,
        partitions=settings.streams.partitions,
        buffer_limit=settings.streams.producer_buffer,
        dlq=dlq,
    )


@contextlib.asynccontextmanager
async def simulator_running(rate: float, seed: int | None = None):  # type: ignore[no-untyped-def]
    """An in-process simulator on a free port, for the length of the block."""
    from k2tui.ingest.simulator import ExchangeSimulator

    simulator = ExchangeSimulator(port=0, rate=rate, seed=seed)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@dataclass(frozen=True)
class StreamPlan:
    """Where each exchange's stream comes from, decided before any trade flows."""

    sources: dict[str, str]
    """exchange → "live" or SIMULATED."""
    notes: list[str]
    """Plain sentences about the choice (an unreachable endpoint, a fallback)."""


async def plan_sources(
    settings: Settings, exchanges: Sequence[str], *, source: str, fallback: bool
) -> StreamPlan:
    """Live where reachable; SIMULATED where asked for, or where allowed after a live endpoint failed."""
    sources: dict[str, str] = {}
    notes: list[str] = []
    for exchange in exchanges:
        if source == "sim":
            sources[exchange] = SIMULATED
            continue
        url = protocol_for(exchange, settings).url()
        reason = await unreachable_reason(url, settings.streams.connect_timeout)
        if reason is None:
            sources[exchange] = "live"
        elif fallback:
            sources[exchange] = SIMULATED
            notes.append(f"{exchange}: cannot reach {url} ({reason}); using the simulator instead")
        else:
            raise SourceUnreachableError(
                f"cannot reach {exchange} at {url} ({reason}); check the network or the "
                f"{exchange}.ws_url setting, or use --source sim (or --fallback to switch automatically)"
            )
    return StreamPlan(sources, notes)


async def stream_trades(
    settings: Settings,
    plan: StreamPlan,
    *,
    producer: TradeProducer | None,
    max_trades: int | None = None,
    duration: float | None = None,
    sim_rate: float = 10.0,
    simulator_url: str | None = None,
    on_trades: Callable[[Sequence[TradeV2]], None] | None = None,
    on_event: Callable[[str, str], None] | None = None,
    on_run: Callable[[StreamRun], None] | None = None,
) -> StreamReport:
    """Run the planned streams until done; a SIMULATED stream reads the simulator at `simulator_url`, or
    one started in this process when there is none."""
    async with contextlib.AsyncExitStack() as stack:
        if simulator_url is None and SIMULATED in plan.sources.values():
            simulator = await stack.enter_async_context(simulator_running(sim_rate))
            simulator_url = simulator.url
        protocols = [
            protocol_for(exchange, settings, simulator_url if origin == SIMULATED else None)
            for exchange, origin in plan.sources.items()
        ]
        run = StreamRun(
            settings,
            protocols,
            sources=plan.sources,
            producer=producer,
            on_trades=on_trades,
            on_event=on_event,
        )
        if on_run is not None:
            on_run(run)
        return await run.run(max_trades=max_trades, duration=duration)
