"""The exchange simulator over real sockets: each protocol's messages against the fixtures, and every knob."""

import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

from k2tui.ingest.simulator import ExchangeSimulator
from k2tui.ingest.simulator.market import HISTORY, KRAKEN_INSTRUMENTS
from k2tui.ingest.simulator.server import fixtures_dir

FIXTURES = fixtures_dir()
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
V1_TIME = re.compile(r"^\d{10}\.\d{6}$")
KRAKEN_GRID = {i.key: i for i in KRAKEN_INSTRUMENTS}


def client(url: str, **options: Any) -> connect:
    """A client that buffers without limit: websockets pauses reading when its queue is full, and a
    paused client cannot see the server's close frame, so closing would wait for the close timeout."""
    return connect(url, max_queue=None, **options)


def fixture(name: str) -> list[str]:
    return (FIXTURES / f"{name}.jsonl").read_text().splitlines()


def fixture_json(name: str) -> list:
    return [json.loads(line) for line in fixture(name)]


def malformed(*exchanges: str) -> list[str]:
    with (FIXTURES / "malformed.jsonl").open() as lines:
        return [row["raw"] for row in map(json.loads, lines) if row["exchange"] in exchanges]


def shape(value: object) -> object:
    """Keys in order and value types, recursively: what 'the same shape as the fixture' means."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


async def recv(ws: ClientConnection, within: float = 2.0) -> str:
    """One text message. Not `asyncio.wait_for`: on 3.11 it can swallow an outer timeout's cancellation."""
    async with asyncio.timeout(within):
        message = await ws.recv()
    assert isinstance(message, str), "the exchanges send text frames"
    return message


async def recv_json(ws: ClientConnection, within: float = 2.0) -> object:
    return json.loads(await recv(ws, within))


async def next_matching(ws: ClientConnection, wanted: Callable[[str], bool], within: float = 3.0) -> str:
    """The first message `wanted` accepts, skipping the others (trades, heartbeats) in between."""
    async with asyncio.timeout(within):
        while True:
            message = await recv(ws, within)
            if wanted(message):
                return message


async def collect(ws: ClientConnection, seconds: float) -> list[str]:
    out: list[str] = []
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                out.append(await recv(ws, seconds + 1))
    return out


def is_trade(message: str) -> bool:
    return '"e":"trade"' in message or message.startswith(('{"channel":"trade"', "["))


def is_reply(message: str) -> bool:
    return not is_trade(message) and "heartbeat" not in message


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    simulator = ExchangeSimulator(rate=50, seed=1, binance_ping_interval=0.2, shutdown_grace=0.2)
    async with simulator:
        yield simulator


# Binance


async def test_binance_raw_stream_events_have_the_fixture_shape(sim: ExchangeSimulator) -> None:
    expected = shape(fixture_json("binance_trade")[0])
    async with client(f"{sim.url}/ws/btcusdt@trade") as ws:
        events = [await recv_json(ws) for _ in range(10)]
    now_ms = time.time() * 1000
    for event in events:
        assert shape(event) == expected
        assert event["s"] == "BTCUSDT" and event["e"] == "trade" and event["M"] is True
        assert re.fullmatch(r"\d+\.\d{2}", event["p"]) and re.fullmatch(r"\d+\.\d{8}", event["q"])
        assert Decimal(event["p"]) > 0 and Decimal(event["q"]) >= Decimal("0.00001")
        assert event["T"] <= event["E"] and now_ms - event["T"] < 5000
    ids = [e["t"] for e in events]
    assert ids == list(range(5429871000, 5429871010))


async def test_binance_combined_stream_wraps_events_per_stream(sim: ExchangeSimulator) -> None:
    expected = shape(fixture_json("binance_combined")[0])
    async with client(f"{sim.url}/stream?streams=btcusdt@trade/ethusdt@trade") as ws:
        messages = [await recv_json(ws) for _ in range(40)]
    by_stream: dict[str, list[int]] = {}
    for message in messages:
        assert shape(message) == expected
        assert message["data"]["s"].lower() + "@trade" == message["stream"]
        by_stream.setdefault(message["stream"], []).append(message["data"]["t"])
    assert set(by_stream) == {"btcusdt@trade", "ethusdt@trade"}
    for ids in by_stream.values():
        assert ids == list(range(ids[0], ids[0] + len(ids)))


async def test_binance_subscribe_list_and_both_error_shapes(sim: ExchangeSimulator) -> None:
    control = fixture_json("binance_control")
    async with client(f"{sim.url}/ws") as ws:
        assert await collect(ws, 0.3) == [], "no stream named, no data"
        await ws.send(json.dumps(control[0]))
        assert await next_matching(ws, is_reply) == fixture("binance_control")[1]
        assert (await recv_json(ws))["s"] in ("BTCUSDT", "ETHUSDT")
        await ws.send(json.dumps(control[2]))
        assert await next_matching(ws, is_reply) == fixture("binance_control")[3]

        await ws.send('{"method":"SUBSCRIBEX","params":["btcusdt@trade"],"id":4}')
        unknown = json.loads(await next_matching(ws, is_reply))
        assert shape(unknown) == shape(control[4])
        assert unknown["code"] == 2 and unknown["msg"].startswith(control[4]["msg"])

        for bad in (["foousdt@trade"], ["btcusdt@kline_1m"], ["BTCUSDT@trade"]):
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["solusdt@trade", *bad], "id": 4}))
            assert await next_matching(ws, is_reply) == fixture("binance_control")[5]
        await ws.send('{"method":"UNSUBSCRIBE","params":["btcusdt@trade","ethusdt@trade"],"id":5}')
        assert await next_matching(ws, is_reply) == '{"result":null,"id":5}'
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":6}')
        assert await next_matching(ws, is_reply) == '{"result":[],"id":6}'


async def test_binance_ignores_unknown_symbols_in_the_url(sim: ExchangeSimulator) -> None:
    async with client(f"{sim.url}/ws/foousdt@trade") as ws:
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        assert await recv(ws) == '{"result":[],"id":1}'
        assert await collect(ws, 0.3) == []


async def test_binance_server_shutdown_event_then_close_1001(sim: ExchangeSimulator) -> None:
    async with client(f"{sim.url}/ws/btcusdt@trade") as ws:
        await recv(ws)
        assert sim.server_shutdown() == 1
        event = json.loads(await next_matching(ws, lambda m: "serverShutdown" in m))
        assert shape(event) == shape(fixture_json("binance_control")[6])
        assert abs(event["E"] - time.time() * 1000) < 2000
        with pytest.raises(ConnectionClosed) as closed:
            await next_matching(ws, lambda m: False)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


async def test_binance_max_connection_age_closes_with_1000(sim: ExchangeSimulator) -> None:
    async with client(f"{sim.url}/ws/btcusdt@trade") as ws:
        await recv(ws)
        started = time.monotonic()
        sim.set_max_connection_age(0.5)
        with pytest.raises(ConnectionClosed) as closed:
            await next_matching(ws, lambda m: False)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    assert time.monotonic() - started < 1.5
    sim.set_max_connection_age(None)
    async with client(f"{sim.url}/ws/btcusdt@trade") as ws:
        assert len(await collect(ws, 0.7)) > 5, "age limit off: the connection stays up"


class PingRecorder(ClientConnection):
    """A client that notes the payload of every ping it is sent (and answers it, as websockets does)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pings: list[bytes] = []

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings.append(bytes(event.data))
        super().process_event(event)


async def test_binance_pings_carry_8_bytes_and_pongs_are_matched(sim: ExchangeSimulator) -> None:
    async with client(f"{sim.url}/ws/btcusdt@trade", create_connection=PingRecorder) as ws:
        await collect(ws, 0.9)
    state = sim.snapshot()["exchanges"]["binance"]
    assert len(ws.pings) >= 3 and {len(p) for p in ws.pings} == {8}
    assert len(set(ws.pings)) == len(ws.pings)
    assert state["pings_sent"] >= len(ws.pings)
    assert 3 <= state["pongs_matched"] <= state["pings_sent"]


# Kraken v1


async def test_kraken_v1_session_matches_the_fixture(sim: ExchangeSimulator) -> None:
    lines, rows = fixture("kraken_v1"), fixture_json("kraken_v1")
    async with client(f"{sim.url}/") as ws:
        status = await recv_json(ws)
        assert shape(status) == shape(rows[0]) and status["status"] == "online"
        await ws.send(lines[1])
        assert [await recv(ws) for _ in range(3)] == lines[2:5]
        await ws.send(json.dumps({**rows[1], "pair": ["XBT/USDX"], "reqid": 2}))
        assert await next_matching(ws, is_reply) == lines[11]
        await ws.send(lines[9])
        assert await next_matching(ws, is_reply) == lines[10]
        trades = [json.loads(m) for m in await collect(ws, 0.6) if m.startswith("[")]
    channels = {337: "XBT/USD", 338: "ETH/USD", 339: "XDG/USD"}
    assert {t[0] for t in trades} == set(channels)
    for channel_id, batch, name, pair in trades:
        assert name == "trade" and pair == channels[channel_id]
        for row in batch:
            assert shape(row) == shape(rows[5][1][0]) and len(row) == 6
            price, volume, when, side, order_type, misc = row
            assert re.fullmatch(r"\d+\.\d{5}", price) and re.fullmatch(r"\d+\.\d{8}", volume)
            assert V1_TIME.match(when) and abs(float(when) - time.time()) < 5
            assert side in "bs" and order_type in "ml" and misc == ""
            assert Decimal(price) > 0 and Decimal(volume) > 0


async def test_kraken_v1_accepts_v2_spelling_and_echoes_it(sim: ExchangeSimulator) -> None:
    async with client(f"{sim.url}/") as ws:
        await recv(ws)
        await ws.send('{"event":"subscribe","pair":["BTC/USD"],"subscription":{"name":"trade"}}')
        ack = await recv_json(ws)
        assert ack["pair"] == "BTC/USD" and ack["status"] == "subscribed" and "reqid" not in ack
        trade = json.loads(await next_matching(ws, lambda m: m.startswith("[")))
        assert trade[0] == ack["channelID"] and trade[3] == "BTC/USD"


async def test_kraken_heartbeats_when_idle(sim: ExchangeSimulator) -> None:
    async with client(f"{sim.url}/") as v1, client(f"{sim.url}/v2") as v2:
        assert "systemStatus" in await recv(v1) and '"channel":"status"' in await recv(v2)
        assert await recv(v1, 1.6) == fixture("kraken_v1")[6]
        assert await recv(v2, 1.6) == fixture("kraken_v2")[5]


# Kraken v2


async def test_kraken_v2_status_acks_snapshot_then_updates(sim: ExchangeSimulator) -> None:
    lines, rows = fixture("kraken_v2"), fixture_json("kraken_v2")
    async with client(f"{sim.url}/v2") as ws:
        status = await recv_json(ws)
        assert shape(status) == shape(rows[0]) and status["data"][0]["system"] == "online"
        await ws.send(lines[1])
        acks = [await recv_json(ws) for _ in range(2)]
        snapshots = [await recv_json(ws) for _ in range(2)]
        updates = [json.loads(m) for m in await collect(ws, 0.5)]
    for ack, symbol in zip(acks, ("BTC/USD", "ETH/USD"), strict=True):
        assert shape(ack) == shape(rows[2]) and ack["result"] == {**rows[2]["result"], "symbol": symbol}
        assert ack["req_id"] == 1 and RFC3339.match(ack["time_in"]) and ack["time_out"] >= ack["time_in"]
    last_snapshot_id = {}
    for snapshot, symbol in zip(snapshots, ("BTC/USD", "ETH/USD"), strict=True):
        assert snapshot["type"] == "snapshot" and 0 < len(snapshot["data"]) <= HISTORY
        assert {t["symbol"] for t in snapshot["data"]} == {symbol}
        assert shape(snapshot["data"][0]) == shape(rows[4]["data"][0])
        last_snapshot_id[symbol] = snapshot["data"][-1]["trade_id"]
    assert last_snapshot_id["BTC/USD"] >= KRAKEN_GRID["BTC/USD"].first_trade_id + HISTORY - 1
    first_update = {}
    for update in updates:
        assert update["channel"] == "trade" and update["type"] == "update"
        for trade in update["data"]:
            assert shape(trade) == shape(rows[6]["data"][0])
            first_update.setdefault(trade["symbol"], trade["trade_id"])
    assert first_update == {s: i + 1 for s, i in last_snapshot_id.items()}, "updates continue the snapshot"


async def test_kraken_v2_numbers_are_exact_decimals_on_the_grid(sim: ExchangeSimulator) -> None:
    sim.set_rate(400)
    async with client(f"{sim.url}/v2") as ws:
        await recv(ws)
        await ws.send(
            '{"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD","ETH/USD","DOGE/USD"]}}'
        )
        raw = [m for m in await collect(ws, 0.6) if is_trade(m)]
    trades = [t for m in raw for t in json.loads(m, parse_float=Decimal)["data"]]
    assert len(trades) > 300
    for trade in trades:
        instrument = KRAKEN_GRID[trade["symbol"]]
        assert isinstance(trade["price"], Decimal) and isinstance(trade["qty"], Decimal)
        assert trade["price"] > 0 and trade["price"] % instrument.tick == 0
        assert trade["qty"] > 0 and trade["qty"] % instrument.lot == 0
        assert trade["side"] in ("buy", "sell") and trade["ord_type"] in ("market", "limit")
        assert RFC3339.match(trade["timestamp"])
    small = re.findall(r'"qty":([^,]+),', "".join(raw))
    exponent = [q for q in small if "e" in q]
    assert exponent, "some dust quantities appear, in exponent form"
    assert all(Decimal(q) < Decimal("0.0001") for q in exponent)
    assert all("e" in q for q in small if Decimal(q) < Decimal("0.0001"))


async def test_kraken_v2_error_ping_and_unsubscribe(sim: ExchangeSimulator) -> None:
    rows = fixture_json("kraken_v2")
    async with client(f"{sim.url}/v2") as ws:
        await recv(ws)
        await ws.send(
            json.dumps({**rows[1], "params": {"channel": "trade", "symbol": ["BTC/USDX"]}, "req_id": 2})
        )
        error = await recv_json(ws)
        assert shape(error) == shape(rows[10])
        assert {k: error[k] for k in ("method", "error", "success", "symbol", "req_id")} == {
            k: rows[10][k] for k in ("method", "error", "success", "symbol", "req_id")
        }
        await ws.send(fixture("kraken_v2")[8])
        pong = json.loads(await next_matching(ws, lambda m: "pong" in m))
        assert shape(pong) == shape(rows[9]) and pong["req_id"] == 101
        await ws.send(
            '{"method":"subscribe","params":{"channel":"trade","symbol":["ETH/USD"],"snapshot":false}}'
        )
        assert (await recv_json(ws))["success"] is True
        assert json.loads(await next_matching(ws, is_trade))["type"] == "update", "no snapshot when not asked"
        await ws.send('{"method":"unsubscribe","params":{"channel":"trade","symbol":["ETH/USD"]},"req_id":7}')
        ack = json.loads(await next_matching(ws, lambda m: "unsubscribe" in m))
        assert ack["success"] is True and ack["result"]["symbol"] == "ETH/USD" and ack["req_id"] == 7
        assert not [m for m in await collect(ws, 0.4) if is_trade(m)]


# Knobs


async def test_drop_connections_aborts_without_a_close_frame(sim: ExchangeSimulator) -> None:
    async with client(f"{sim.url}/ws/btcusdt@trade") as binance, client(f"{sim.url}/v2") as kraken:
        await recv(binance)
        await recv(kraken)
        assert sim.drop_connections("binance") == 1
        with pytest.raises(ConnectionClosedError) as dropped:
            await next_matching(binance, lambda m: False)
        assert dropped.value.rcvd is None
        await kraken.send('{"method":"ping","req_id":1}')
        assert "pong" in await next_matching(kraken, lambda m: "pong" in m)
        assert sim.drop_connections() == 1
        with pytest.raises(ConnectionClosedError):
            await next_matching(kraken, lambda m: False)
    assert sim.snapshot()["exchanges"]["binance"]["dropped_connections"] == 1


async def test_stall_silences_connections_until_resume(sim: ExchangeSimulator) -> None:
    async with client(f"{sim.url}/ws/btcusdt@trade") as binance, client(f"{sim.url}/") as kraken:
        ids = [json.loads(await recv(binance))["t"]]
        await recv(kraken)
        assert sim.stall() == 2
        silent = await asyncio.gather(collect(binance, 1.0), collect(kraken, 1.0))
        assert silent == [[], []], "no trades, no heartbeats while stalled"
        assert sim.snapshot()["exchanges"]["binance"]["stalled_connections"] == 1
        assert sim.resume() == 2
        ids += [json.loads(m)["t"] for m in await collect(binance, 0.3)]
        assert await recv(kraken, 1.6) == '{"event":"heartbeat"}'
    steps = [b - a for a, b in itertools.pairwise(ids)]
    assert len(steps) > 3 and max(steps) > 10, "trades during the stall were lost, as on a hung connection"


async def test_inject_malformed_sends_the_fixture_lines_verbatim(sim: ExchangeSimulator) -> None:
    sim.set_rate(0.1)
    async with (
        client(f"{sim.url}/ws/btcusdt@trade", max_size=None) as binance,
        client(f"{sim.url}/", max_size=None) as v1,
        client(f"{sim.url}/v2", max_size=None) as v2,
    ):
        await recv(v1)
        await recv(v2)
        expected = {
            "binance": malformed("binance", "any"),
            "v1": malformed("kraken_v1", "any")[:2],
            "v2": malformed("kraken_v2", "any")[:2],
        }
        assert len(expected["binance"]) == 11
        assert sim.inject_malformed("binance", 11) == 11
        assert sim.inject_malformed("kraken", 2) == 4
        received = {
            name: [await next_matching(ws, set(expected[name]).__contains__) for _ in expected[name]]
            for name, ws in (("binance", binance), ("v1", v1), ("v2", v2))
        }
        assert received == expected
        assert sim.inject_malformed("kraken_v1", 1) == 1
        third = malformed("kraken_v1", "any")[2]
        assert await next_matching(v1, lambda m: "heartbeat" not in m) == third
    with pytest.raises(ValueError):
        sim.inject_malformed("coinbase")


async def test_skip_trade_ids_leaves_a_gap(sim: ExchangeSimulator) -> None:
    async with client(f"{sim.url}/ws/btcusdt@trade") as binance, client(f"{sim.url}/v2") as kraken:
        await recv(kraken)
        await kraken.send(
            '{"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD"],"snapshot":false}}'
        )
        await recv(kraken)
        binance_ids = [json.loads(await recv(binance))["t"]]
        kraken_ids = [json.loads(await next_matching(kraken, is_trade))["data"][-1]["trade_id"]]
        sim.skip_trade_ids("binance", 5)
        sim.skip_trade_ids("kraken", 2)
        binance_ids += [json.loads(m)["t"] for m in await collect(binance, 0.5)]
        kraken_ids += [
            t["trade_id"] for m in await collect(kraken, 0.5) if is_trade(m) for t in json.loads(m)["data"]
        ]
    for ids, gap in ((binance_ids, 6), (kraken_ids, 3)):
        steps = [b - a for a, b in itertools.pairwise(ids)]
        assert sorted(set(steps)) == [1, gap] and steps.count(gap) == 1
    assert sim.snapshot()["knobs"]["trade_ids_skipped"] == {"binance": 5, "kraken": 2}


async def test_repeat_trade_sends_the_same_id_twice(sim: ExchangeSimulator) -> None:
    async with client(f"{sim.url}/ws/btcusdt@trade") as ws:
        last = json.loads(await recv(ws))
        sim.repeat_trade("binance")
        events = [last] + [json.loads(m) for m in await collect(ws, 0.4)]
    repeats = [(a, b) for a, b in itertools.pairwise(events) if a["t"] == b["t"]]
    assert len(repeats) == 1
    original, again = repeats[0]
    assert {k: again[k] for k in "spqTm"} == {k: original[k] for k in "spqTm"}


async def test_set_rate_changes_the_flow(sim: ExchangeSimulator) -> None:
    sim.set_rate(1)
    async with client(f"{sim.url}/ws/btcusdt@trade") as ws:
        slow = len(await collect(ws, 0.5))
        assert sim.set_rate(3000) == 3000
        fast = len(await collect(ws, 0.5))
    assert slow < 10 and fast > 500
    with pytest.raises(ValueError):
        sim.set_rate(0)


async def test_http_control_endpoint(sim: ExchangeSimulator) -> None:
    base = f"http://127.0.0.1:{sim.port}/control"
    async with httpx.AsyncClient(timeout=5) as http, client(f"{sim.url}/ws/btcusdt@trade") as ws:
        await recv(ws)
        state = (await http.get(base)).json()
        assert state["exchanges"]["binance"]["connections"] == {"/ws": 1, "/stream": 0}
        assert state["exchanges"]["kraken"]["connections"] == {"/": 0, "/v2": 0}
        assert state["rate"] == 50 and state["exchanges"]["binance"]["messages_sent"] >= 1

        response = await http.post(f"{base}/set_rate", params={"rate": "120"})
        assert response.status_code == 200 and response.json() == {"ok": True, "result": 120.0}
        assert sim.rate == 120
        response = await http.post(f"{base}/set_max_connection_age", params={"seconds": "none"})
        assert response.json() == {"ok": True, "result": None}

        for path, status in [
            ("/nope", 404),
            ("/set_rate?rate=abc", 400),
            ("/set_rate?rate=0", 400),
            ("/set_rate?speed=1", 400),
            ("/set_rate", 400),
            ("/stall?exchange=coinbase", 400),
        ]:
            response = await http.post(base + path)
            assert response.status_code == status, path
            assert response.headers["content-type"] == "application/json"
            assert response.json()["ok"] is False and response.json()["error"]
        assert (await http.get(f"{base}/set_rate")).status_code == 405

        response = await http.post(f"{base}/drop_connections", params={"exchange": "binance"})
        assert response.json() == {"ok": True, "result": 1}
        with pytest.raises(ConnectionClosedError):
            await next_matching(ws, lambda m: False)


async def test_unknown_paths_are_refused(sim: ExchangeSimulator) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with client(f"{sim.url}/api/v3/trades"):
            pass
    assert refused.value.response.status_code == 404
