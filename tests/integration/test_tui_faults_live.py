"""The cockpit's fault keys on the session's real stack: stop the registry while trades flow, see the
banner, heal it, and read the recovery line whose counts say nothing was lost or doubled."""

from __future__ import annotations

import re

import pytest

from k2tui.stack.supervisor import LocalStack
from k2tui.tui.app import CockpitApp
from k2tui.tui.data import LiveSources
from k2tui.tui.widgets.event_log import EventLog
from k2tui.tui.widgets.fault_banner import FaultBanner
from k2tui.validate.traffic import Traffic
from tests.integration.pipeline import until

RECOVERED = re.compile(
    r"Schema Registry unavailable: recovered in [\d.]+ s; ([\d,]+) in Kafka = \1 in Iceberg, "
    r"0 missing, 0 duplicated$"
)


@pytest.mark.usefixtures("healed")
async def test_stop_registry_from_the_menu_then_heal_and_read_equal_counts(stack: LocalStack) -> None:
    app = CockpitApp(LiveSources(stack))  # the default actions act on the same stack
    traffic = Traffic(stack.layout.settings, rate=5.0)
    await traffic.start()
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            banner = app.main.query_one(FaultBanner)
            log = app.main.query_one(EventLog)
            await pilot.press("f", "down", "enter", "y")  # the second entry: Schema Registry unavailable
            await until(
                lambda: banner.text.startswith("FAULT ACTIVE: registry stopped since "), 30, "the banner"
            )
            assert banner.text.endswith("press h to heal")
            await pilot.pause(2.0)  # trades pile up in Kafka while the consumer cannot decode them
            await pilot.press("h")
            await until(
                lambda: any("Schema Registry unavailable: " in line for line in log.recent), 60, "recovery"
            )
            line = next(line for line in log.recent if "Schema Registry unavailable: " in line)
            match = RECOVERED.search(line)
            assert match, line
            assert int(match.group(1).replace(",", "")) > 0, line
            assert banner.text == ""
            await pilot.press("q")
    finally:
        await traffic.stop()
