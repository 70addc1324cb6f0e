"""The cockpit on the session's real stack: its panes fill from the same library calls the CLI makes."""

from __future__ import annotations

import asyncio
import re

from k2tui.stack.supervisor import LocalStack, ServiceState
from k2tui.tui.app import CockpitApp
from k2tui.tui.data import LiveSources
from tests.integration.pipeline import until
from tests.tui.screen_text import pane_text


async def test_the_cockpit_shows_the_running_stack(stack: LocalStack) -> None:
    statuses = await asyncio.to_thread(stack.status)
    expected = [s.name for s in statuses if s.state == ServiceState.READY]
    app = CockpitApp(LiveSources(stack))
    async with app.run_test(size=(160, 50)) as pilot:

        def services_ready() -> bool:
            text = pane_text(app, "services")
            return all(re.search(rf"^{re.escape(name)}\s+ready\b", text, re.M) for name in expected)

        await until(services_ready, 30, f"the Services pane showing {expected} ready")
        await until(lambda: "records" in pane_text(app, "iceberg"), 30, "the Iceberg pane showing the table")
        iceberg = pane_text(app, "iceberg")
        assert "market_data.trades_v2" in iceberg and "unavailable" not in iceberg
        assert "backend: local" in pane_text(app, "services")
        # Prometheus, when installed, is where the consumer's rates come from; else its /metrics page.
        source = "from Prometheus" if "prometheus" in expected else "/metrics, rates over"
        await until(lambda: source in pane_text(app, "consumer"), 30, f"the Consumer pane reading {source}")
        consumer = pane_text(app, "consumer")
        assert re.search(r"consumed / written\s+[\d,]+ / [\d,]+", consumer), consumer
        assert re.search(r"breaker lake\s+closed", consumer), consumer
        await pilot.press("q")
    assert app.return_code == 0
