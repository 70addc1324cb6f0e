"""The cockpit against fake sources: every pane shows its data, a dead source says why, keys work."""

from __future__ import annotations

import time

import pytest
from textual.pilot import Pilot

from k2tui.stack.events import StackEvent
from k2tui.tui.app import CockpitApp
from k2tui.tui.data import KafkaSnapshot, LagTrends, PartitionLag
from k2tui.tui.screens.help import HelpScreen
from k2tui.tui.widgets.event_log import EventLog
from k2tui.tui.widgets.kafka import KafkaPane
from tests.tui.fakes import FakeSources, fake_app
from tests.tui.screen_text import pane_text

SIZE = (160, 50)


async def settle(pilot: Pilot[None], app: CockpitApp, until: str, pane_id: str) -> str:
    for _ in range(100):
        await pilot.pause(0.02)
        text = pane_text(app, pane_id)
        if until in text:
            return text
    raise AssertionError(f"#{pane_id} never showed {until!r}; it shows:\n{text}")


async def logged(pilot: Pilot[None], app: CockpitApp, line: str) -> None:
    for _ in range(200):
        if line in app.screen.query_one(EventLog).recent:
            return
        await pilot.pause(0.05)
    shown = list(app.screen.query_one(EventLog).recent)
    raise AssertionError(f"the event log never showed {line!r}: {shown}")


async def test_every_pane_renders_its_source() -> None:
    app = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        services = await settle(pilot, app, "object-store", "services")
        assert "backend: local" in services
        assert "paused" in services and "exited (3)" in services and "1h02m" in services
        kafka = await settle(pilot, app, "draining", "kafka")
        assert "binance" in kafka and "12,000" in kafka and "kraken" in kafka
        iceberg = await settle(pilot, app, "snapshots 3", "iceberg")
        assert "records 1,500" in iceberg and "7000000000000000003" in iceberg and "append" in iceberg
        consumer = await settle(pilot, app, "16,321", "consumer")
        assert "88 ms" in consumer and "breaker registry" in consumer and "open" in consumer
        dlq = await settle(pilot, app, "4 entries", "dlq")
        assert "schema mismatch: missing field price" in dlq
        assert "15:30:45 services: first refresh" in app.screen.query_one(EventLog).recent


async def test_a_failing_source_says_why_in_its_pane_and_the_log() -> None:
    sources = FakeSources(failing={"kafka": ConnectionError("broker at 127.0.0.1:19092 refused")})
    app = fake_app(sources)
    async with app.run_test(size=SIZE) as pilot:
        text = await settle(pilot, app, "unavailable", "kafka")
        assert "unavailable: broker at 127.0.0.1:19092 refused" in text
        await settle(pilot, app, "16,321", "consumer")  # the other panes are unaffected
        log = list(app.screen.query_one(EventLog).recent)
        assert log.count("15:30:45 kafka: unavailable: broker at 127.0.0.1:19092 refused") == 1
        sources.failing.clear()
        await settle(pilot, app, "binance", "kafka")
        assert any("kafka: back after broker" in line for line in app.screen.query_one(EventLog).recent)


async def test_question_mark_shows_the_keys_and_q_quits() -> None:
    app = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = {what: shown for shown, what in app.screen.keys}
        # The keys the key bar has no room for are here too, and a key Textual also binds shares a line.
        assert keys["Quit"] == "q ^q" and keys["Help"] == "?"
        assert keys["Last validation results"] == "r" and keys["Light/dark theme"] == "t"
        assert list(keys)[:2] == ["Quit", "Help"]
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert all(w.is_finished for w in app.running.values())
    started = dict(app.running)
    app.refresh_sources()  # a refresh tick that lands while the app shuts down starts nothing
    assert app.running == started


async def test_the_help_lists_the_keys_of_where_it_was_opened() -> None:
    app = fake_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = {what: shown for shown, what in app.screen.keys}
        assert keys["Overview tab"] == "1" and "[" in keys["Previous tab"]
        await pilot.press("escape", "d", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert ("⏎", "Open entry") in app.screen.keys and ("↓", "Next entry") in app.screen.keys


async def test_panes_redraw_at_most_ten_times_a_second_however_fast_sources_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sources = FakeSources()
    app = fake_app(sources, refresh_s=0.005)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.screen.query_one(KafkaPane)
        draws: list[float] = []
        original = pane.render_snapshot

        def counted(*args: object) -> None:
            draws.append(time.monotonic())
            original(*args)

        monkeypatch.setattr(pane, "render_snapshot", counted)
        fetched = sources.kafka_calls
        began = time.monotonic()
        await pilot.pause(1.0)
        elapsed = time.monotonic() - began
        assert sources.kafka_calls - fetched > len(draws)  # more answers than redraws
        assert len(draws) <= 10 * elapsed + 1


def test_lag_trends_follow_the_last_refreshes() -> None:
    trends = LagTrends(points=3)
    for committed in (100, 50, 50, 80):  # lag 0, 50, 50, 20 against a log end of 100
        trends.record(KafkaSnapshot("g", [PartitionLag("t", 0, 100, committed)]))
    assert trends.trend("t", 0) == "draining"
    trends.record(KafkaSnapshot("g", [PartitionLag("t", 0, 200, 80)]))
    assert trends.trend("t", 0) == "growing"
    for _ in range(3):
        trends.record(KafkaSnapshot("g", [PartitionLag("t", 0, 200, 150)]))
    assert trends.trend("t", 0) == "stalled"
    for _ in range(3):
        trends.record(KafkaSnapshot("g", [PartitionLag("t", 0, 200, 200)]))
    assert trends.trend("t", 0) == "caught up"
    assert trends.trend("t", 1) == "…"


async def test_engine_events_reach_the_event_log_and_a_dead_engine_is_logged_once() -> None:
    sources = FakeSources(engine_events=[StackEvent(1_768_318_245.0, "broker", "die", "exit code 137")])
    app = fake_app(sources)
    async with app.run_test(size=SIZE) as pilot:
        await logged(pilot, app, "15:30:45 local: broker die (exit code 137)")
        log = list(app.screen.query_one(EventLog).recent)
        assert log.count("15:30:45 local: broker die (exit code 137)") == 1
        assert not any("events: first refresh" in line for line in log)
        sources.failing["events"] = ConnectionError("cannot reach the Docker engine")
        await logged(pilot, app, "15:30:45 events: unavailable: cannot reach the Docker engine")
        log = list(app.screen.query_one(EventLog).recent)
        assert log.count("15:30:45 events: unavailable: cannot reach the Docker engine") == 1


def test_kafka_rates_are_the_offsets_moved_per_second_over_the_refreshes_kept() -> None:
    trends = LagTrends(points=3)
    assert trends.rates("t", 0) is None
    for second, (end, committed) in enumerate([(100, None), (150, 40), (300, 100), (400, 250)]):
        trends.record(KafkaSnapshot("g", [PartitionLag("t", 0, end, committed)], taken=2.0 * second))
    assert trends.rates("t", 0) == ((400 - 150) / 4, (250 - 40) / 4)  # the last three refreshes
