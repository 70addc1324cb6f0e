"""The exchange streams as the cockpit sees them: each stream service's /stats, and the start / stop /
switch-source calls behind the stream keys.

A stream whose service does not answer because it is not running is "stopped", which is no error; the
Streams pane says "unavailable" only when no service can be read for another reason. Nothing here
imports Textual.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import httpx
import msgspec

from k2tui.config import Settings
from k2tui.ingest.control import (
    STATS_TIMEOUT_S,
    decode_stats,
    set_stream_source,
    start_stream,
    stop_stream,
)
from k2tui.ingest.runner import EXCHANGES, SIMULATED
from k2tui.ingest.status import ProducerStatus, StreamStatus, TapeTrade
from k2tui.stack.backend import Stack
from k2tui.stack.local_http import local_client
from k2tui.stack.services import stats_url

TAPE_TRADES = 20
"""Newest trades kept for the tape, across both exchanges."""


@dataclass(frozen=True)
class StreamView:
    """One exchange's stream service: its stream's figures, or why there are none."""

    exchange: str
    stream: StreamStatus | None = None
    """None when the service is not running (or is starting and has no stream yet)."""
    producer: ProducerStatus | None = None
    running: bool = False
    problem: str = ""
    """Why a running service's /stats could not be read; empty otherwise."""

    @property
    def simulated(self) -> bool:
        return self.stream is not None and self.stream.source == SIMULATED

    @property
    def state(self) -> str:
        if self.problem:
            return "unreadable"
        if not self.running:
            return "stopped"
        return "starting" if self.stream is None else self.stream.state


@dataclass(frozen=True)
class StreamsSnapshot:
    streams: list[StreamView]
    trades: list[TapeTrade]
    """Newest first, both exchanges merged."""

    def view(self, exchange: str) -> StreamView | None:
        return next((v for v in self.streams if v.exchange == exchange), None)


async def read_streams(settings: Settings) -> StreamsSnapshot:
    """Every stream service's /stats at once; raises only when none could be read, saying why."""
    async with local_client(STATS_TIMEOUT_S) as client:
        views = await asyncio.gather(*(_read_one(client, settings, e) for e in EXCHANGES))
    problems = [f"{v.exchange}: {v.problem}" for v, _ in views if v.problem]
    if len(problems) == len(views):
        raise ConnectionError("; ".join(problems))
    trades = sorted((t for _, page_trades in views for t in page_trades), key=lambda t: t.time, reverse=True)
    return StreamsSnapshot([v for v, _ in views], trades[:TAPE_TRADES])


async def _read_one(
    client: httpx.AsyncClient, settings: Settings, exchange: str
) -> tuple[StreamView, list[TapeTrade]]:
    url = stats_url(settings, exchange)
    try:
        response = await client.get(url)
        response.raise_for_status()
        page = decode_stats(response.content)
    except httpx.ConnectError:
        return StreamView(exchange), []
    except (httpx.HTTPError, msgspec.DecodeError) as error:
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return StreamView(exchange, running=True, problem=f"GET {url}: {reason}"), []
    stream = next((s for s in page.streams if s.name == exchange), None)
    return StreamView(exchange, stream, page.producer, running=True), page.trades


class StreamSwitchboard(Protocol):
    """The stream keys' calls; each says what it did in a sentence, or raises with the reason."""

    async def start(self, exchange: str) -> str: ...
    async def stop(self, exchange: str) -> str: ...
    async def set_source(self, exchange: str, source: str) -> str:
        """Restart the stream reading `source`: live, sim or auto."""
        ...


class LiveStreamSwitchboard:
    """The stack's stream services, through the functions `k2tui restart <exchange> --source` uses."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def start(self, exchange: str) -> str:
        return await asyncio.to_thread(start_stream, self.stack, exchange)

    async def stop(self, exchange: str) -> str:
        return await asyncio.to_thread(stop_stream, self.stack, exchange)

    async def set_source(self, exchange: str, source: str) -> str:
        return await asyncio.to_thread(set_stream_source, self.stack, exchange, source)
