"""The Streams pane and the stream keys against fakes: b and k start or stop a stream, l switches the
running streams between live and the simulator, and the event log says what happened or why not."""

from __future__ import annotations

from rich.text import Text
from textual.pilot import Pilot

from k2tui.ingest.status import delivery_problem
from k2tui.stack.supervisor import StackError
from k2tui.tui.app import CockpitApp
from k2tui.tui.screens.help import HelpScreen
from k2tui.tui.widgets.body import Grid
from k2tui.tui.widgets.event_log import EventLog
from k2tui.tui.widgets.streams import StreamsPane, sparkline
from tests.tui.fakes import FakeSources, fake_app, settled_frame
from tests.tui.screen_text import pane_text, static_text

SIZE = (140, 45)


def log_lines(app: CockpitApp) -> list[str]:
    return [line for line in app.main.query_one(EventLog).recent if not line.endswith("first refresh")]


async def press_and_settle(pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_the_pane_shows_each_stream_with_its_badge_and_the_tape_newest_first() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        lines = pane_text(app, "streams").splitlines()
        assert lines[0].split() == ["binance", "streaming", "SIMULATED"]
        assert lines[1].split()[:2] == ["11.0", "trades/s"] and len(lines[1].split()[2]) == 30
        assert "reconnects 1 · gaps 2 · latency p50/p99 3.6/12.4 ms" in lines[2]
        assert "Kafka acked 12,380 · buffered 20" in lines[3]
        assert lines[4].split() == ["kraken", "stopped", "(k", "starts", "it)"]
        assert lines[5].split() == ["time", "UTC", "exchange", "symbol", "side", "price", "quantity"]
        tape = [line.split() for line in lines[6:] if line.strip()]
        assert len(tape) == 8
        assert tape[0] == ["15:30:44.900", "binance", "BTCUSDT", "BUY", "86412.35", "0.01000000"]
        assert [row[0] for row in tape] == sorted((row[0] for row in tape), reverse=True)
        assert {row[3] for row in tape} == {"BUY", "SELL"}
        body = app.main.query_one(StreamsPane).body.parts
        head, tape_table = body[0], body[-1]
        assert isinstance(head, Text) and isinstance(tape_table, Grid)
        badge = [span for span in head.spans if head.plain[span.start : span.end].strip() == "SIMULATED"]
        assert badge and str(badge[0].style) == "reverse"
        sides = {(row[3].plain, str(row[3].style)) for row in tape_table.rows}
        assert sides == {("BUY", "green"), ("SELL", "red")}


async def test_b_stops_a_running_stream_and_k_starts_a_stopped_one() -> None:
    sources = FakeSources()
    app = fake_app(sources, refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        await press_and_settle(pilot, "b")
        await press_and_settle(pilot, "k")
        assert sources.switchboard.calls == [("stop", "binance"), ("start", "kraken")]
        assert log_lines(app) == [
            "15:30:45 binance: stopping…",
            "15:30:45 binance: stopped",
            "15:30:45 kraken: starting…",
            "15:30:45 kraken: started (simulator)",
        ]


async def test_l_switches_the_running_streams_to_live_when_one_is_simulated() -> None:
    sources = FakeSources()
    app = fake_app(sources, refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        await press_and_settle(pilot, "l")
        assert sources.switchboard.calls == [("set_source", "binance", "live")]  # kraken is stopped
        assert log_lines(app)[-2:] == [
            "15:30:45 binance: switching to live…",
            "15:30:45 binance: restarted with source live (live)",
        ]


async def test_a_failed_start_says_why_in_the_log() -> None:
    sources = FakeSources()
    sources.switchboard.failing["kraken"] = StackError(
        "kraken did not come up: GET http://127.0.0.1:19097/stats: ConnectError; last lines of kraken.log:\n"
        "  Error: cannot reach kraken at wss://ws.kraken.com/v2 (gaierror)\n  second line\n  third line"
    )
    app = fake_app(sources, refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        await press_and_settle(pilot, "k")
        assert log_lines(app)[-1] == (
            "15:30:45 kraken: failed: kraken did not come up: GET http://127.0.0.1:19097/stats: "
            "ConnectError; last lines of kraken.log: / Error: cannot reach kraken at "
            "wss://ws.kraken.com/v2 (gaierror) / second line …"
        )


async def test_l_with_no_stream_running_says_how_to_start_one() -> None:
    sources = FakeSources()
    app = fake_app(sources, refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        await press_and_settle(pilot, "b")  # the fake keeps reporting binance as running
        app.streams_seen = None
        await press_and_settle(pilot, "l")
        assert log_lines(app)[-1] == "15:30:45 streams: none is running; b or k starts one"
        assert ("set_source", "binance", "live") not in sources.switchboard.calls


async def test_unreadable_stream_services_make_the_pane_unavailable() -> None:
    sources = FakeSources(failing={"streams": ConnectionError("binance: timed out; kraken: timed out")})
    app = fake_app(sources)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):
            await pilot.pause(0.02)
            if "unavailable" in pane_text(app, "streams"):
                break
        assert pane_text(app, "streams").strip() == "unavailable: binance: timed out; kraken: timed out"
        assert "binance/0" in pane_text(app, "kafka")  # the other panes are unaffected


async def test_the_stream_keys_are_in_the_help() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join(static_text(s) for s in app.screen.query("Static"))
        for key, description in (("b", "Binance on/off"), ("k", "Kraken on/off")):
            assert any(line.split()[:1] == [key] and description in line for line in text.splitlines())
        assert "Streams live/simulator" in text


def test_the_sparkline_scales_to_the_busiest_second() -> None:
    assert sparkline([0, 5, 10]) == "▁▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([]) == ""


def test_the_producer_line_names_what_keeps_trades_from_kafka_and_not_before_it_has_tried() -> None:
    assert delivery_problem(kafka_up=True, registry_up=True, last_error="") == ""
    assert delivery_problem(kafka_up=False, registry_up=False, last_error="") == "connecting to Kafka"
    refused = "Kafka at 127.0.0.1:9092 is unavailable: connection refused"
    assert delivery_problem(kafka_up=False, registry_up=True, last_error=refused) == "Kafka unavailable"
    down = "the Schema Registry at http://127.0.0.1:8081 is unavailable"
    assert delivery_problem(False, False, down) == "Schema Registry unavailable"
