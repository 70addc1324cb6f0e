"""One exchange stream over WebSocket: connect, subscribe, read, and come back after anything goes wrong.

Reconnects use capped exponential backoff with full jitter; a planned close (Binance's 24 h limit or
serverShutdown) reconnects at once. A silence watchdog reconnects when nothing arrives for
``streams.silence_timeout`` seconds. Every refused message goes to the dead-letter queue with its text.
A subscription the exchange refuses for every symbol ends the stream with that message, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from k2tui.config import StreamSettings
from k2tui.ingest.dlq import DeadLetterQueue
from k2tui.ingest.outcome import Control, ControlKind, Parsed, Rejection
from k2tui.ingest.stats import StreamState, StreamStats
from k2tui.model.trade import Exchange, TradeV2

TradeSink = Callable[[Sequence[TradeV2]], None]
# Far above any real message, so an oversized one is refused by us (into the DLQ), not by the library
# (which would close the connection with 1009).
TRANSPORT_MAX_BYTES = 64 * 1024 * 1024
HEALTHY_AFTER_S = 10.0


class ExchangeProtocol(Protocol):
    exchange: Exchange
    name: str
    symbols: tuple[str, ...]

    def url(self) -> str: ...
    def subscribe_messages(self) -> list[str]: ...
    def keepalive_message(self) -> str | None: ...
    def parse(self, raw: str, received_us: int) -> Parsed: ...


class SubscriptionError(RuntimeError):
    """The exchange refused every symbol asked for; the message is the exchange's answer."""


class _Reconnect(Exception):
    """End this session and connect again; `planned` skips the backoff."""

    def __init__(self, reason: str, *, planned: bool = False) -> None:
        super().__init__(reason)
        self.planned = planned


@dataclass(slots=True)
class _Liveness:
    """When the session last heard from the exchange, and whether a keepalive is out since."""

    last_heard: float
    keepalive_sent: bool = False

    def heard(self, now: float) -> None:
        self.last_heard = now
        self.keepalive_sent = False


class StreamClient:
    def __init__(
        self,
        protocol: ExchangeProtocol,
        settings: StreamSettings,
        sink: TradeSink,
        *,
        dlq: DeadLetterQueue | None = None,
        source: str = "live",
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.protocol = protocol
        self.settings = settings
        self.sink = sink
        self.dlq = dlq
        self.stats = StreamStats(protocol.name, source)
        self.on_event = on_event or (lambda _stream, _message: None)
        self._stop = asyncio.Event()
        self._started = time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Stream until stop(); raises SubscriptionError when nothing can be subscribed."""
        failures = 0
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    await self._session()
                    return
                except _Reconnect as reason:
                    planned = reason.planned
                    message = str(reason)
                except (OSError, TimeoutError, InvalidHandshake) as error:
                    planned, message = False, _describe_failure(error)
                self.stats.state = StreamState.RECONNECTING
                self.stats.connected_since = None
                self.stats.reconnected(message, time.time())
                self.stats.last_error = message
                self.on_event(self.protocol.name, f"reconnecting: {message}")
                failures = 0 if planned or time.monotonic() - began > HEALTHY_AFTER_S else failures + 1
                if not planned:
                    await self._sleep(self._backoff(failures))
        except SubscriptionError as error:
            self.stats.state = StreamState.FAILED
            self.stats.last_error = str(error)
            raise
        finally:
            if self.stats.state is not StreamState.FAILED:
                self.stats.state = StreamState.STOPPED

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.settings.backoff_max, self.settings.backoff_initial * 2 ** max(0, failures - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _session(self) -> None:
        self.stats.state = StreamState.CONNECTING
        opened = time.monotonic()
        async with connect(
            self.protocol.url(),
            open_timeout=self.settings.connect_timeout,
            max_size=TRANSPORT_MAX_BYTES,
            close_timeout=2,
            compression=None,
        ) as connection:
            self.stats.connect_seconds = time.monotonic() - opened
            self.stats.state = StreamState.SUBSCRIBING
            for request in self.protocol.subscribe_messages():
                await connection.send(request)
            await self._read(connection, set(self.protocol.symbols))

    async def _read(self, connection: ClientConnection, pending: set[str]) -> None:
        """Read until stopped, with the silence watchdog beside the reader rather than around each receive.

        A timer (or a task and an `asyncio.wait`) per message cost 6–18 µs each, a third of a core at
        the simulator's 30,000 messages a second; the watchdog wakes only when its limit comes up.
        """
        liveness = _Liveness(time.monotonic())
        reader = asyncio.ensure_future(self._receive(connection, pending, liveness))
        watchdog = asyncio.ensure_future(self._watch(connection, pending, liveness))
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait({reader, watchdog, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, watchdog, stopped):
                task.cancel()
            await asyncio.gather(reader, watchdog, stopped, return_exceptions=True)
        for task in (reader, watchdog):
            if task in done:
                task.result()

    async def _receive(self, connection: ClientConnection, pending: set[str], liveness: _Liveness) -> None:
        refused: list[str] = []
        while True:
            try:
                raw = await connection.recv()
            except ConnectionClosed as closed:
                raise _Reconnect(_describe_close(closed), planned=_planned_close(closed)) from None
            liveness.heard(time.monotonic())
            for control in self._handle(raw):
                self._control(control, pending, refused)

    async def _watch(self, connection: ClientConnection, pending: set[str], liveness: _Liveness) -> None:
        """Until the subscription is answered, its deadline; then, halfway to the silence limit, the
        protocol's keepalive if it has one, and at the limit a reconnect."""
        silence = self.settings.silence_timeout
        subscribe_deadline = time.monotonic() + self.settings.connect_timeout
        while True:
            limit = liveness.last_heard + (silence if liveness.keepalive_sent else silence / 2)
            if pending:
                limit = min(limit, subscribe_deadline)
            now = time.monotonic()
            if now < limit:
                await asyncio.sleep(limit - now)
                continue
            if pending and now >= subscribe_deadline:
                wait = self.settings.connect_timeout
                raise _Reconnect(
                    f"no answer to the subscription for {', '.join(sorted(pending))} in {wait:g} s"
                )
            keepalive = None if liveness.keepalive_sent else self.protocol.keepalive_message()
            if keepalive is None:
                raise _Reconnect(f"nothing received for {silence:g} s (silence watchdog)")
            await connection.send(keepalive)
            liveness.keepalive_sent = True

    def _handle(self, raw: str | bytes) -> list[Control]:
        received_us = time.time_ns() // 1000
        stats = self.stats
        stats.messages += 1
        text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
        if len(text) > self.settings.max_message_bytes:
            limit = self.settings.max_message_bytes
            self._reject(Rejection(f"message of {len(text):,} bytes exceeds the {limit:,}-byte limit", text))
            return []
        parsed = self.protocol.parse(text, received_us)
        for rejection in parsed.rejections:
            self._reject(rejection)
        if parsed.trades:
            now = received_us / 1e6
            live = not parsed.snapshot
            fresh = [t for t in parsed.trades if stats.accept(t, now, live=live)]
            if fresh:
                if stats.first_trade_seconds is None:
                    stats.first_trade_seconds = time.monotonic() - self._started
                if stats.state is not StreamState.STREAMING:
                    self._streaming()
                stats.rate_meter.add(len(fresh), now)
                self.sink(fresh)
        return parsed.controls

    def _streaming(self) -> None:
        self.stats.state = StreamState.STREAMING
        self.stats.connected_since = time.time()

    def _reject(self, rejection: Rejection) -> None:
        self.stats.parse_errors += 1
        if self.dlq is not None:
            self.dlq.put(
                rejection.reason,
                rejection.raw,
                error_type="Rejected",
                exchange=self.protocol.name,
                url=self.protocol.url(),
            )
        self.on_event(self.protocol.name, f"rejected: {rejection.reason}")

    def _control(self, control: Control, pending: set[str], refused: list[str]) -> None:
        if control.kind is ControlKind.SUBSCRIBED:
            pending.difference_update(control.symbols or self.protocol.symbols)
            if not pending and self.stats.state is not StreamState.STREAMING:
                self._streaming()
        elif control.kind is ControlKind.SUBSCRIPTION_ERROR:
            symbols = control.symbols or tuple(pending)
            pending.difference_update(symbols)
            refused.extend(symbols)
            self.stats.last_error = control.detail
            self.on_event(self.protocol.name, control.detail)
            if set(refused) >= set(self.protocol.symbols):
                raise SubscriptionError(control.detail)
        elif control.kind is ControlKind.PLANNED_RECONNECT:
            raise _Reconnect(control.detail, planned=True)


def _describe_close(closed: ConnectionClosed) -> str:
    if closed.rcvd is None:
        return "the connection dropped without a close frame"
    reason = f": {closed.rcvd.reason}" if closed.rcvd.reason else ""
    return f"the exchange closed the connection (code {closed.rcvd.code}{reason})"


def _planned_close(closed: ConnectionClosed) -> bool:
    """A clean close (1000, or 1001 going away) is the exchange's own schedule, e.g. Binance's 24 h limit."""
    return closed.rcvd is not None and closed.rcvd.code in (1000, 1001)


def _describe_failure(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return "timed out opening the WebSocket"
    if isinstance(error, InvalidURI):
        return f"invalid WebSocket URL: {error}"
    return f"cannot connect: {error}"
