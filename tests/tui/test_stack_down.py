"""The cockpit with its real sources pointed at a stack that is not running: it says so, pane by pane."""

from __future__ import annotations

from pathlib import Path

from k2tui.stack.supervisor import LocalStack
from k2tui.tui.app import CockpitApp
from k2tui.tui.data import LiveSources
from tests.integration.stack_fixture import throwaway_settings
from tests.tui.screen_text import pane_text


async def test_a_stopped_stack_shows_unavailable_panes_and_how_to_start_it(tmp_path: Path) -> None:
    settings, _ = throwaway_settings(tmp_path)  # a home and free ports where nothing runs
    app = CockpitApp(LiveSources(LocalStack(settings)))
    async with app.run_test(size=(160, 50)) as pilot:
        panes = ("kafka", "iceberg", "consumer", "services")
        for _ in range(100):
            await pilot.pause(0.05)
            if all("waiting for the first refresh" not in pane_text(app, p) for p in panes):
                break
        for pane in panes[:3]:
            assert pane_text(app, pane).startswith("unavailable: ")
        assert "start it with `k2tui up`" in pane_text(app, "services")
        assert f"{settings.stack.kafka_port}" in pane_text(app, "kafka")
        assert "is the stack up" in pane_text(app, "iceberg")
        assert f"{settings.consumer.metrics_port}/metrics" in pane_text(app, "consumer")
        assert "no dead letters" in pane_text(app, "dlq")
        await pilot.press("q")
    assert app.return_code == 0
