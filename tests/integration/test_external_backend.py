"""The external backend on the session's real stack: it reads every service as the local backend does,
shows no process, and refuses, in a sentence, whatever would need to run or break one."""

from __future__ import annotations

import asyncio
import re

import pytest

from k2tui.stack.backend import open_stack
from k2tui.stack.supervisor import FaultAction, LocalStack, ServiceState, StackError
from k2tui.tui.app import CockpitApp
from k2tui.tui.data import LiveSources
from tests.integration.pipeline import until
from tests.tui.screen_text import pane_text

pytestmark = pytest.mark.usefixtures("healed")


async def test_the_external_backend_reads_the_running_stack_and_refuses_to_act_on_it(
    stack: LocalStack,
) -> None:
    external = open_stack(stack.layout.settings, "external")
    assert external.backend == "external"
    local = {s.name: s for s in await asyncio.to_thread(stack.status)}
    read = {s.name: s for s in await asyncio.to_thread(external.status)}
    shared = [name for name in read if name in local and local[name].state is ServiceState.READY]
    assert {"broker", "registry", "object-store", "catalog", "api"} <= set(shared)
    for name in shared:
        assert read[name].state is ServiceState.READY and read[name].pid is None, read[name]
    with pytest.raises(
        StackError, match=r"only reads the services at 127\.0\.0\.1; stop registry where they run"
    ):
        external.fault("registry", FaultAction.STOP)
    with pytest.raises(StackError, match="start them where they run"):
        external.up()

    await asyncio.to_thread(stack.fault, "registry", FaultAction.STOP)
    registry = next(s for s in await asyncio.to_thread(external.status) if s.name == "registry")
    assert registry.state is ServiceState.NOT_READY and "/subjects" in registry.detail


async def test_the_cockpit_attaches_to_external_services(stack: LocalStack) -> None:
    app = CockpitApp(LiveSources(open_stack(stack.layout.settings, "external")))
    async with app.run_test(size=(160, 50)) as pilot:
        await until(
            lambda: "backend: external" in pane_text(app, "services"), 30, "the external backend shown"
        )
        await until(
            lambda: re.search(r"^broker\s+ready", pane_text(app, "services"), re.M) is not None,
            30,
            "the broker read as ready",
        )
        await until(lambda: "records" in pane_text(app, "iceberg"), 30, "the Iceberg pane filled")
        await pilot.press("s")  # the consumer is someone else's: the cockpit says so and does nothing
        await until(
            lambda: any("only reads the services" in line for line in app.main.query_one("#events").recent),  # type: ignore[attr-defined]
            10,
            "the refusal in the event log",
        )
        await pilot.press("q")
