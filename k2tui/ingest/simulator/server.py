"""The exchange simulator: Binance and Kraken on one port, with knobs that inject real exchanges' faults.

Endpoints (paths as on the real hosts): Binance ``/ws/<stream>``, ``/ws``, ``/stream?streams=a/b``; Kraken v1
``/`` and v2 ``/v2``. Each exchange has one market, advanced every few milliseconds by a task that runs while
the exchange has connections, so an idle simulator costs nothing. Each connection has its own send task and
queue, so one slow or stalled client never holds up another.

The knobs are methods of ExchangeSimulator and also an HTTP endpoint on the same port:
``GET /control`` returns ``snapshot()``; ``POST /control/<knob>?arg=value`` calls the knob, e.g.
``POST /control/set_rate?rate=100`` or ``POST /control/drop_connections?exchange=binance``. Arguments go in
the query string: websockets reads no request body and rejects requests that have one.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import random
import signal
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from k2tui.ingest.simulator import binance, kraken
from k2tui.ingest.simulator.market import (
    BINANCE_INSTRUMENTS,
    HISTORY,
    KRAKEN_INSTRUMENTS,
    Market,
    SimTrade,
)

TICK = 0.005
"""Seconds between market steps: small enough for low latency, large enough to batch 10,000 trades/s."""
MAX_BACKLOG = 2000
"""Batches a connection may have queued before it is cut off as a slow consumer, as Binance does."""
MAX_STEP = 1.0
EXCHANGES = ("binance", "kraken")
KINDS = (binance.KIND, kraken.V1_KIND, kraken.V2_KIND)
ROUTES = {"binance": ("/ws", "/stream"), "kraken": ("/", "/v2")}

BUILTIN_MALFORMED: tuple[tuple[str, str], ...] = (
    (
        "binance",
        '{"e":"trade","E":1795276800200,"s":"BTCUSDT","t":5429871100,"p":"-86412.35","q":"0.01000000",'
        '"T":1795276800199,"m":false,"M":true}',
    ),
    ("binance", '{"e":"trade","E":1795276800200,"s":"BTCUSDT","t":54298'),
    ("kraken_v1", '[337,[["86390.10000","0.01000000"]],"trade","XBT/USD"]'),
    (
        "kraken_v2",
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":"86390.1",'
        '"qty":0.01,"ord_type":"limit","trade_id":104622400,"timestamp":"2026-11-21T16:00:01.123456Z"}]}',
    ),
    ("any", "\x00\x01\xff\xfe not json"),
    ("any", '{"e":"trade","pad":"' + "x" * 2_000_000 + '"}'),
)
"""Stand-ins of the fixture's kinds for when the simulator runs without the repository's fixtures."""


class ExchangeProtocol(Protocol):
    """What binance.py and kraken.py provide per connection: the protocol without the I/O."""

    kind: str

    def greeting(self) -> list[str]: ...

    def heartbeat(self) -> str | None: ...

    def handle(self, text: str, received_us: int) -> list[str]: ...

    def encode(self, trades: Mapping[str, Sequence[SimTrade]]) -> list[str]: ...

    def subscribed_keys(self) -> set[str]: ...


def fixtures_dir() -> Path:
    """``K2TUI_FIXTURES_DIR``, else the repository's ``../shared/fixtures/exchanges``."""
    configured = os.environ.get("K2TUI_FIXTURES_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "exchanges"


def load_malformed(directory: Path) -> dict[str, list[str]]:
    """Raw malformed messages per connection kind, in file order: its own cases and the ``any`` ones."""
    path = directory / "malformed.jsonl"
    if path.is_file():
        with path.open(encoding="utf-8") as lines:
            cases = [(row["exchange"], row["raw"]) for row in map(json.loads, lines) if row]
    else:
        cases = list(BUILTIN_MALFORMED)
    return {kind: [raw for exchange, raw in cases if exchange in (kind, "any")] for kind in KINDS}


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(eq=False)
class Session:
    """One client connection: its protocol state, its send queue and whether it is stalled."""

    connection: ServerConnection
    protocol: ExchangeProtocol
    route: str
    feed: Feed
    opened: float = field(default_factory=time.monotonic)
    last_trade: float = field(default_factory=time.monotonic)
    outbox: asyncio.Queue[tuple[list[str], int]] = field(default_factory=asyncio.Queue)
    live: asyncio.Event = field(default_factory=asyncio.Event)
    age_timer: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        self.live.set()

    def push(self, messages: list[str], trades: int = 0) -> None:
        if not messages:
            return
        self.outbox.put_nowait((messages, trades))
        if self.outbox.qsize() > MAX_BACKLOG:
            self.feed.slow_consumer_disconnects += 1
            self.abort()

    def publish(self, trades: Mapping[str, Sequence[SimTrade]]) -> None:
        """Queue this batch's trades; a stalled connection loses them, as a hung one would."""
        if not self.live.is_set():
            return
        messages = self.protocol.encode(trades)
        if messages:
            self.last_trade = time.monotonic()
            keys = self.protocol.subscribed_keys()
            self.push(messages, sum(len(batch) for key, batch in trades.items() if key in keys))

    def abort(self) -> None:
        """Cut the TCP connection without a close frame."""
        self.connection.transport.abort()

    async def serve(self, heartbeat_interval: float, ping_interval: float | None) -> None:
        self.push(self.protocol.greeting())
        tasks = [asyncio.create_task(self._send_loop())]
        heartbeat = self.protocol.heartbeat()
        if heartbeat is not None:
            tasks.append(asyncio.create_task(self._heartbeats(heartbeat, heartbeat_interval)))
        if ping_interval:
            tasks.append(asyncio.create_task(self._pings(ping_interval)))
        try:
            async for message in self.connection:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                self.push(self.protocol.handle(text, now_us()))
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            if self.age_timer is not None:
                self.age_timer.cancel()

    async def _send_loop(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                messages, trades = await self.outbox.get()
                await self.live.wait()
                for message in messages:
                    await self.connection.send(message)
                self.feed.messages_sent += len(messages)
                self.feed.trades_sent += trades

    async def _heartbeats(self, heartbeat: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.live.is_set() and time.monotonic() - self.last_trade >= interval:
                self.push([heartbeat])

    async def _pings(self, interval: float) -> None:
        """Protocol pings with an 8-byte payload; a pong counts only if it echoes this ping's payload."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(interval)
                if not self.live.is_set():
                    continue
                waiter = await self.connection.ping(os.urandom(8))
                self.feed.pings_sent += 1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await waiter
                    self.feed.pongs_matched += 1

    def expire(self) -> None:
        """Close as Binance does when a connection reaches its maximum age."""
        self.feed.spawn(self.connection.close(1000, "connection reached its maximum age"))


class Feed:
    """One exchange: its market, its connections, and the task that advances the market while it has any."""

    def __init__(self, name: str, market: Market) -> None:
        self.name = name
        self.market = market
        self.sessions: set[Session] = set()
        self.max_age: float | None = None
        self.messages_sent = 0
        self.trades_sent = 0
        self.pings_sent = 0
        self.pongs_matched = 0
        self.dropped_connections = 0
        self.slow_consumer_disconnects = 0
        self._runner: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[object]] = set()

    def attach(self, session: Session) -> None:
        self.sessions.add(session)
        self.schedule_expiry(session)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())

    def detach(self, session: Session) -> None:
        self.sessions.discard(session)

    def schedule_expiry(self, session: Session) -> None:
        if session.age_timer is not None:
            session.age_timer.cancel()
            session.age_timer = None
        if self.max_age is not None:
            delay = max(0.0, session.opened + self.max_age - time.monotonic())
            session.age_timer = asyncio.get_running_loop().call_later(delay, session.expire)

    def spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        """Run a fire-and-forget coroutine, keeping a reference so it is not collected mid-flight."""
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while self.sessions:
            await asyncio.sleep(TICK)
            now = loop.time()
            trades = self.market.advance(min(now - last, MAX_STEP), now_us())
            last = now
            if trades:
                for session in list(self.sessions):
                    session.publish(trades)

    async def close(self) -> None:
        tasks = [t for t in (self._runner, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def describe(self) -> dict[str, object]:
        routes = {route: sum(s.route == route for s in self.sessions) for route in ROUTES[self.name]}
        return {
            "connections": routes,
            "messages_sent": self.messages_sent,
            "trades_sent": self.trades_sent,
            "trades_generated": self.market.trades_generated,
            "pings_sent": self.pings_sent,
            "pongs_matched": self.pongs_matched,
            "stalled_connections": sum(not s.live.is_set() for s in self.sessions),
            "dropped_connections": self.dropped_connections,
            "slow_consumer_disconnects": self.slow_consumer_disconnects,
        }


class ExchangeSimulator:
    """Binance and Kraken v1/v2 trade streams on one port, plus fault knobs and an HTTP control endpoint."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float = 10.0,
        seed: int | None = None,
        *,
        binance_ping_interval: float = 20.0,
        heartbeat_interval: float = 1.0,
        shutdown_grace: float = 1.0,
    ) -> None:
        self.host = host
        self.port = port
        self.binance_ping_interval = binance_ping_interval
        self.heartbeat_interval = heartbeat_interval
        self.shutdown_grace = shutdown_grace
        self.feeds = {
            "binance": Feed("binance", Market(BINANCE_INSTRUMENTS, rate, seed)),
            "kraken": Feed("kraken", Market(KRAKEN_INSTRUMENTS, rate, None if seed is None else seed + 1)),
        }
        self._ids = random.Random(seed)
        self._server: Server | None = None
        self._malformed: dict[str, list[str]] | None = None
        self._malformed_cursor = dict.fromkeys(KINDS, 0)
        self._counters: dict[str, dict[str, int]] = {
            "malformed_injected": dict.fromkeys(KINDS, 0),
            "trade_ids_skipped": dict.fromkeys(EXCHANGES, 0),
            "trades_repeated": dict.fromkeys(EXCHANGES, 0),
            "server_shutdowns": {"binance": 0},
        }

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rate(self) -> float:
        return self.feeds["binance"].market.rate

    async def start(self) -> None:
        self.feeds["kraken"].market.prime(HISTORY, now_us())
        self._server = await serve(
            self._serve_connection,
            self.host,
            self.port,
            process_request=self._process_request,
            ping_interval=None,
            compression=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for feed in self.feeds.values():
            await feed.close()

    async def __aenter__(self) -> ExchangeSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def endpoints(self) -> list[str]:
        """One line per endpoint, for people starting the simulator by hand."""
        http = f"http://{self.host}:{self.port}"
        return [
            f"binance  {self.url}/ws/btcusdt@trade  (raw; or /ws then SUBSCRIBE)",
            f"binance  {self.url}/stream?streams=btcusdt@trade/ethusdt@trade  (combined)",
            f"kraken   {self.url}/  (v1)",
            f"kraken   {self.url}/v2  (v2)",
            f"control  {http}/control  (GET: state; POST /control/<knob>?arg=value)",
        ]

    # Knobs

    def set_rate(self, rate: float) -> float:
        for feed in self.feeds.values():
            feed.market.set_rate(rate)
        return self.rate

    def drop_connections(self, exchange: str | None = None) -> int:
        """Abort TCP without a close frame, as a network failure would; returns how many were cut."""
        count = 0
        for feed in self._feeds(exchange):
            for session in list(feed.sessions):
                session.abort()
                feed.dropped_connections += 1
                count += 1
        return count

    def stall(self, exchange: str | None = None) -> int:
        """Current connections go silent (no trades, heartbeats, pings) but stay open; trades are lost."""
        sessions = [s for feed in self._feeds(exchange) for s in feed.sessions]
        for session in sessions:
            session.live.clear()
        return len(sessions)

    def resume(self, exchange: str | None = None) -> int:
        sessions = [s for feed in self._feeds(exchange) for s in feed.sessions if not s.live.is_set()]
        for session in sessions:
            session.live.set()
        return len(sessions)

    def inject_malformed(self, exchange: str, count: int = 1) -> int:
        """Send the next `count` malformed fixture messages verbatim to each matching connection.

        `exchange` is ``binance``, ``kraken`` (both versions) or ``kraken_v1`` / ``kraken_v2``; each
        connection kind cycles through its own cases of malformed.jsonl plus the ``any`` ones. Returns
        the number of frames queued.
        """
        if exchange not in (*EXCHANGES, *KINDS):
            raise ValueError(f"exchange must be one of {', '.join(dict.fromkeys((*EXCHANGES, *KINDS)))}")
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        if self._malformed is None:
            self._malformed = load_malformed(fixtures_dir())
        kinds = [k for k in KINDS if k == exchange or k.startswith(exchange + "_")]
        queued = 0
        for kind in kinds:
            cases, start = self._malformed[kind], self._malformed_cursor[kind]
            chosen = [cases[(start + i) % len(cases)] for i in range(count)]
            self._malformed_cursor[kind] = (start + count) % len(cases)
            self._counters["malformed_injected"][kind] += count
            for session in self._sessions_of_kind(kind):
                session.push(chosen)
                queued += count
        return queued

    def skip_trade_ids(self, exchange: str, count: int = 1) -> None:
        """Each symbol's next trade id jumps by count + 1: the gap a sequence tracker must report."""
        self._feed(exchange).market.skip_ids(count)
        self._counters["trade_ids_skipped"][exchange] += count

    def repeat_trade(self, exchange: str) -> None:
        """Send each symbol's last trade again with the same id: the duplicate a consumer must absorb."""
        self._feed(exchange).market.repeat_last()
        self._counters["trades_repeated"][exchange] += 1

    def server_shutdown(self) -> int:
        """Binance's ``serverShutdown`` event to every Binance connection, then close 1001 after a grace."""
        feed = self.feeds["binance"]
        sessions = list(feed.sessions)
        event = binance.server_shutdown_event()
        for session in sessions:
            session.push([event])
        self._counters["server_shutdowns"]["binance"] += 1
        feed.spawn(self._close_after(sessions, self.shutdown_grace))
        return len(sessions)

    def set_max_connection_age(self, seconds: float | None) -> float | None:
        """Close Binance connections with 1000 once older than `seconds` (Binance: 24 h); None: off."""
        if seconds is not None and seconds <= 0:
            raise ValueError(f"seconds must be positive or None, not {seconds}")
        feed = self.feeds["binance"]
        feed.max_age = seconds
        for session in feed.sessions:
            feed.schedule_expiry(session)
        return seconds

    def snapshot(self) -> dict[str, object]:
        return {
            "url": self.url,
            "rate": self.rate,
            "exchanges": {name: feed.describe() for name, feed in self.feeds.items()},
            "knobs": {
                "max_connection_age": self.feeds["binance"].max_age,
                "binance_ping_interval": self.binance_ping_interval,
                **self._counters,
            },
        }

    # Internals

    def _feed(self, exchange: str) -> Feed:
        if exchange not in self.feeds:
            raise ValueError(f"exchange must be one of {', '.join(EXCHANGES)}, not {exchange!r}")
        return self.feeds[exchange]

    def _feeds(self, exchange: str | None) -> list[Feed]:
        return list(self.feeds.values()) if exchange is None else [self._feed(exchange)]

    def _sessions_of_kind(self, kind: str) -> list[Session]:
        return [s for feed in self.feeds.values() for s in feed.sessions if s.protocol.kind == kind]

    async def _close_after(self, sessions: list[Session], grace: float) -> None:
        await asyncio.sleep(grace)
        await asyncio.gather(*(s.connection.close(1001, "server shutdown") for s in sessions))

    async def _serve_connection(self, connection: ServerConnection) -> None:
        path = connection.request.path if connection.request is not None else "/"
        route = urlsplit(path).path
        protocol: ExchangeProtocol
        if binance.is_binance_path(path):
            feed, route = self.feeds["binance"], binance.route_of(path)
            protocol = binance.BinanceProtocol(path, list(feed.market.instruments))
        elif route == "/":
            feed = self.feeds["kraken"]
            protocol = kraken.KrakenV1Protocol(feed.market.instruments, self._ids.getrandbits(64))
        else:
            feed = self.feeds["kraken"]
            protocol = kraken.KrakenV2Protocol(feed.market, self._ids.getrandbits(64))
        session = Session(connection, protocol, route, feed)
        feed.attach(session)
        try:
            ping_interval = self.binance_ping_interval if feed.name == "binance" else None
            await session.serve(self.heartbeat_interval, ping_interval)
        finally:
            feed.detach(session)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/control" or path.startswith("/control/"):
            status, body = self._control(request.method, request.path)
            return _json_response(connection, status, body)
        if path in ("/", "/v2") or binance.is_binance_path(path):
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, f"no endpoint at {path}\n")

    def _control(self, method: str, target: str) -> tuple[HTTPStatus, object]:
        """The HTTP face of the knobs: status and JSON body for one request."""
        split = urlsplit(target)
        name = split.path.removeprefix("/control").strip("/")
        if not name:
            if method != "GET":
                return HTTPStatus.METHOD_NOT_ALLOWED, {"ok": False, "error": "use GET /control"}
            return HTTPStatus.OK, self.snapshot()
        knob = self._knobs().get(name)
        if knob is None:
            return HTTPStatus.NOT_FOUND, {
                "ok": False,
                "error": f"no knob {name!r}; knobs: {', '.join(self._knobs())}",
            }
        if method != "POST":
            return HTTPStatus.METHOD_NOT_ALLOWED, {
                "ok": False,
                "error": f"use POST /control/{name}?arg=value",
            }
        function, converters = knob
        try:
            query = {key: values[-1] for key, values in parse_qs(split.query, keep_blank_values=True).items()}
            unknown = set(query) - set(converters)
            if unknown:
                raise ValueError(
                    f"unknown argument(s) {', '.join(sorted(unknown))}; {name} takes {list(converters)}"
                )
            arguments = {key: converters[key](value) for key, value in query.items()}
            inspect.signature(function).bind(**arguments)
            result = function(**arguments)
        except (TypeError, ValueError) as error:
            return HTTPStatus.BAD_REQUEST, {"ok": False, "error": str(error)}
        return HTTPStatus.OK, {"ok": True, "result": result}

    def _knobs(self) -> dict[str, tuple[Callable[..., object], dict[str, Callable[[str], object]]]]:
        return {
            "set_rate": (self.set_rate, {"rate": float}),
            "drop_connections": (self.drop_connections, {"exchange": str}),
            "stall": (self.stall, {"exchange": str}),
            "resume": (self.resume, {"exchange": str}),
            "inject_malformed": (self.inject_malformed, {"exchange": str, "count": int}),
            "skip_trade_ids": (self.skip_trade_ids, {"exchange": str, "count": int}),
            "repeat_trade": (self.repeat_trade, {"exchange": str}),
            "server_shutdown": (self.server_shutdown, {}),
            "set_max_connection_age": (self.set_max_connection_age, {"seconds": _optional_float}),
        }


def _optional_float(text: str) -> float | None:
    return None if text.strip().lower() in ("", "none", "null", "off") else float(text)


def _json_response(connection: ServerConnection, status: HTTPStatus, body: object) -> Response:
    response = connection.respond(status, json.dumps(body) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


async def _serve_until_signalled(host: str, port: int, rate: float, seed: int | None) -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    async with ExchangeSimulator(host, port, rate, seed) as simulator:
        for line in simulator.endpoints():
            print(line, flush=True)
        await stopped.wait()


def run_simulator(host: str, port: int, rate: float, seed: int | None) -> None:
    """Serve until Ctrl-C or SIGTERM, printing one line per endpoint first."""
    asyncio.run(_serve_until_signalled(host, port, rate, seed))
