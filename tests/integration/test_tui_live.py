"""The cockpit on the session's real stack: its panes fill from the same library calls the CLI makes."""

from __future__ import annotations

import asyncio
import re

from pyiceberg.exceptions import CommitFailedException

from k2tui.consume.writer import arrow_trades, carried_properties
from k2tui.lake.catalog import open_trades_table
from k2tui.model.samples import sample_trades
from k2tui.stack.supervisor import FaultAction, LocalStack, ServiceState
from k2tui.tui.app import CockpitApp
from k2tui.tui.data import LiveSources
from k2tui.tui.lake_snapshots import SnapshotReader
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
        assert "from the API 127.0.0.1:" in iceberg
        assert "backend: local" in pane_text(app, "services")
        # Prometheus, when installed, is where the consumer's rates come from; else its /metrics page.
        source = "from Prometheus" if "prometheus" in expected else "/metrics, rates over"
        await until(lambda: source in pane_text(app, "consumer"), 30, f"the Consumer pane reading {source}")
        consumer = pane_text(app, "consumer")
        assert re.search(r"consumed / written\s+[\d,]+ / [\d,]+", consumer), consumer
        assert re.search(r"breaker lake\s+closed", consumer), consumer
        await pilot.press("q")
    assert app.return_code == 0


async def test_the_iceberg_pane_reads_the_api_and_the_lake_itself_while_the_api_is_stopped(
    stack: LocalStack,
) -> None:
    appended = await asyncio.to_thread(_append_five, stack)
    reader = SnapshotReader(stack.layout)
    for _ in range(40):  # the API reloads the table a moment after a commit
        source, newest, total = await reader.read()
        if newest and newest[0].time.micros // 1000 >= appended:
            break
        await asyncio.sleep(0.25)
    assert source == f"the API {stack.layout.endpoints.api_url.removeprefix('http://')}"
    # Ours, or one the session's consumer committed after it.
    assert newest[0].current and newest[0].time.micros // 1000 >= appended and total >= len(newest)
    await asyncio.to_thread(stack.fault, "api", FaultAction.STOP)
    try:
        source, direct, direct_total = await reader.read()
    finally:
        await asyncio.to_thread(stack.fault, "api", FaultAction.START)
    assert source == "the lake (the API is not running)"
    # Nothing is lost between the two: the lake holds at least what the API reported, newest first.
    assert direct_total >= total and direct[0].time >= newest[0].time
    assert [s.time for s in direct] == sorted((s.time for s in direct), reverse=True)


def _append_five(stack: LocalStack) -> int:
    """Appends five trades (again, when the session's consumer commits first); the snapshot's time in ms."""
    table = open_trades_table(stack.layout)
    for _ in range(10):
        try:
            table.append(
                arrow_trades(list(sample_trades(5, seed=29)), table.schema().as_arrow()),
                carried_properties(table),
            )
        except CommitFailedException:
            table = open_trades_table(stack.layout)
            continue
        snapshot = table.current_snapshot()
        assert snapshot is not None
        return snapshot.timestamp_ms
    raise AssertionError("ten appends in a row lost the race with the consumer")
