"""The main screen's layouts: at 160x50 every pane is on screen at once, at 120x40 two columns with lag
and the consumer above the fold, at 80x24 tabs that the keys and the mouse switch; the panes keep
redrawing and the fault banner shows in every one of them."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widget import Widget

from k2tui.stack.supervisor import ServiceState, ServiceStatus
from k2tui.tui.app import CockpitApp
from k2tui.tui.data import ServicesSnapshot
from k2tui.tui.widgets.dlq import DlqPane
from k2tui.tui.widgets.event_log import EventLog
from k2tui.tui.widgets.fault_banner import FaultBanner
from tests.tui.fakes import FakeSources, fake_app, settled_frame, still_app
from tests.tui.screen_text import pane_text

STACK_SERVICES = "proxy broker registry catalog object-store simulator binance kraken consumer api prometheus"
PANES = ("services", "streams", "kafka", "iceberg", "consumer", "dlq", "checklists", "events")
TAB_PANES = {
    "1": {"services", "kafka", "consumer"},
    "2": {"streams"},
    "3": {"iceberg", "dlq", "checklists"},
    "4": {"events"},
}


def on_screen(app: CockpitApp, pane_id: str) -> bool:
    """The whole pane is drawn between the header and the footer, with nothing to scroll to reach it."""
    pane = app.main.query_one(f"#{pane_id}", Widget)
    cockpit = app.main.query_one("#cockpit").region
    return pane.display and pane.region.area > 0 and cockpit.contains_region(pane.region)


def shown(app: CockpitApp) -> set[str]:
    """The panes drawn whole, with nothing to scroll."""
    return {pane_id for pane_id in PANES if on_screen(app, pane_id)}


def drawn(app: CockpitApp) -> set[str]:
    """The panes drawn at all (a long tab scrolls to the end of its last pane)."""
    cockpit = app.main.query_one("#cockpit").region
    return {pane_id for pane_id in PANES if app.main.query_one(f"#{pane_id}").region.overlaps(cockpit)}


async def started(pilot: Pilot[None]) -> CockpitApp:
    await settled_frame(pilot)
    assert isinstance(pilot.app, CockpitApp)
    return pilot.app


class FullStackSources(FakeSources):
    """The fakes with as many services as the local stack runs, so the Services pane is as tall as live."""

    async def services(self) -> ServicesSnapshot:
        return ServicesSnapshot(
            "local",
            [
                ServiceStatus(
                    name, name, ServiceState.READY, f"127.0.0.1:{19080 + n}", pid=100 + n, uptime_s=60.0
                )
                for n, name in enumerate(STACK_SERVICES.split())
            ],
        )


async def test_at_160x50_all_eight_panes_are_on_screen_without_scrolling() -> None:
    async with fake_app(FullStackSources(), refresh_s=3600).run_test(size=(160, 50)) as pilot:
        app = await started(pilot)
        assert shown(app) == set(PANES)
        assert not app.main.query_one("#tabs").display
        kafka, consumer = (app.main.query_one(f"#{name}").region for name in ("kafka", "consumer"))
        iceberg, streams = (app.main.query_one(f"#{name}").region for name in ("iceberg", "streams"))
        assert kafka.x < iceberg.x < streams.x and consumer.x == kafka.x  # three columns


async def test_at_120x40_two_columns_with_lag_and_the_consumer_above_the_fold() -> None:
    async with still_app().run_test(size=(120, 40)) as pilot:
        app = await started(pilot)
        assert {"services", "kafka", "consumer", "streams", "events"} <= shown(app)
        assert not app.main.query_one("#tabs").display
        services, streams = (app.main.query_one(f"#{name}").region for name in ("services", "streams"))
        iceberg = app.main.query_one("#iceberg").region
        assert streams.x >= services.right and iceberg.x == services.x  # two columns
        assert "checklists" not in shown(app)  # the left column scrolls to the rest


async def test_at_80x24_the_tab_keys_and_a_click_show_one_group_of_panes_at_a_time() -> None:
    async with still_app().run_test(size=(80, 24)) as pilot:
        app = await started(pilot)
        assert app.main.query_one("#tabs").display
        assert drawn(app) == TAB_PANES["1"] and {"services", "kafka"} <= shown(app)
        for key in ("2", "3", "4", "1"):
            await pilot.press(key)
            await pilot.pause()
            assert drawn(app) == TAB_PANES[key], key
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert drawn(app) == TAB_PANES["2"]
        await pilot.press("left_square_bracket", "left_square_bracket")
        await pilot.pause()
        assert drawn(app) == TAB_PANES["4"]
        await pilot.click("#tab-lake")
        await pilot.pause()
        assert drawn(app) == TAB_PANES["3"]


async def test_at_80x24_d_brings_up_the_lake_tab_with_the_dlq_focused() -> None:
    async with still_app().run_test(size=(80, 24)) as pilot:
        app = await started(pilot)
        await pilot.press("d")
        await pilot.pause()
        assert drawn(app) == TAB_PANES["3"]
        assert app.focused is app.main.query_one(DlqPane)


async def test_the_event_log_written_while_hidden_reads_whole_lines_when_shown() -> None:
    async with still_app().run_test(size=(80, 24)) as pilot:
        app = await started(pilot)
        await pilot.press("4")
        await pilot.pause()
        drawn = [strip.text.rstrip() for strip in app.main.query_one(EventLog).lines]
        assert "15:30:45 checklists: first refresh" in drawn


async def test_every_layout_keeps_redrawing_its_panes_and_shows_the_fault_banner() -> None:
    async with still_app().run_test(size=(160, 50)) as pilot:
        app = await started(pilot)
        sources = app.sources
        assert isinstance(sources, FakeSources)
        banner = app.main.query_one(FaultBanner)
        banner.active("FAULT kafka-down")
        for width, height in ((120, 40), (80, 24), (160, 50)):
            await pilot.resize_terminal(width, height)
            sources.lags = [width * 10 + height]
            app.refresh_sources()
            await app.workers.wait_for_complete()
            await pilot.pause()
            app.redraw()
            await pilot.pause()
            assert f"{width * 10 + height:,}" in pane_text(app, "kafka"), width
            assert banner.region.height == 1 and app.screen.region.contains_region(banner.region), width
