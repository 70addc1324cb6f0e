"""The operator keys against fake actions: s starts and stops the consumer, f injects a fault after a
confirmation and shows the banner, h heals it and logs the recovery with its counts, v runs a validation
with live progress and results, r reopens them, x cancels a run."""

from __future__ import annotations

import asyncio
import io

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList, Static

from k2tui.tui.app import CockpitApp
from k2tui.tui.screens.confirm import ConfirmScreen
from k2tui.tui.screens.help import HelpScreen
from k2tui.tui.screens.menu import MenuScreen
from k2tui.tui.screens.validation import ValidationScreen
from k2tui.tui.widgets.event_log import EventLog
from k2tui.tui.widgets.fault_banner import FaultBanner
from k2tui.validate.live_faults import MENU, Recovery, SimulatorUnavailableError
from tests.tui.fake_actions import FakeActions
from tests.tui.fakes import fake_app

SIZE = (140, 45)
EXACT_LINE = "recovered in 6.2 s; 1,234 in Kafka = 1,234 in Iceberg, 0 missing, 0 duplicated"


def log_lines(app: CockpitApp) -> list[str]:
    """The event log without the sources' refresh lines, which come whenever they come."""
    return [line for line in app.main.query_one(EventLog).recent if not line.endswith("first refresh")]


def banner(app: CockpitApp) -> str:
    return app.main.query_one(FaultBanner).text


def text_of(app: CockpitApp, selector: str) -> str:
    out = io.StringIO()
    Console(width=200, file=out).print(app.screen.query_one(selector, Static).content)
    return out.getvalue()


async def settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def choose_fault(pilot: Pilot[None], fault_id: str) -> None:
    await pilot.press("f")
    await pilot.pause()
    for _ in range([fault.id for fault in MENU].index(fault_id)):
        await pilot.press("down")
    await pilot.press("enter")
    await pilot.pause()


async def test_s_stops_and_starts_the_consumer_and_says_so() -> None:
    actions = FakeActions()
    app = fake_app(refresh_s=3600, actions=actions)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await settle(pilot)
        assert "15:30:45 consumer stopped (SIGTERM)" in log_lines(app)
        await pilot.press("s")
        await settle(pilot)
        assert "15:30:45 consumer is running and ready" in log_lines(app)
        actions.failing["toggle_consumer"] = RuntimeError("consumer is unavailable: no such service")
        await pilot.press("s")
        await settle(pilot)
        assert log_lines(app)[-1].endswith(
            "consumer: could not start or stop it: consumer is unavailable: no such service"
        )


async def test_f_lists_every_fault_and_escape_injects_nothing() -> None:
    actions = FakeActions()
    app = fake_app(refresh_s=3600, actions=actions)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, MenuScreen)
        options = app.screen.query_one(OptionList)
        shown = [
            str(options.get_option_at_index(i).prompt).split("\n")[0] for i in range(options.option_count)
        ]
        assert shown == [fault.title for fault in MENU]
        assert "Malformed messages from the exchange" in shown and "Sequence gap" in shown[-1]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main and actions.calls == []


async def test_a_lasting_fault_asks_first_shows_the_banner_and_h_heals_it_with_the_counts() -> None:
    actions = FakeActions()
    app = fake_app(refresh_s=3600, actions=actions)
    async with app.run_test(size=SIZE) as pilot:
        await choose_fault(pilot, "registry_unavailable")
        assert isinstance(app.screen, ConfirmScreen)
        assert "The Schema Registry is stopped" in text_of(app, ".question")
        assert "lasts until you press h" in text_of(app, ".question")
        await pilot.press("n")
        await settle(pilot)
        assert actions.calls == [] and banner(app) == ""

        await choose_fault(pilot, "registry_unavailable")
        await pilot.press("y")
        await settle(pilot)
        assert banner(app) == "FAULT ACTIVE: registry stopped since 15:30:45 — press h to heal"
        assert app.main.query_one(FaultBanner).has_class("-active")
        assert "15:30:45 fault injected: registry stopped (the fake did it)" in log_lines(app)

        await pilot.press("f")  # one fault at a time
        await pilot.pause()
        assert app.screen is app.main
        assert log_lines(app)[-1].endswith("a fault is already on (registry stopped): h heals it")

        await pilot.press("h")
        await settle(pilot)
        assert banner(app) == "" and not app.main.query_one(FaultBanner).display
        assert actions.calls == [
            "inject registry_unavailable",
            "heal registry_unavailable",
            "recover registry_unavailable",
        ]
        assert "15:30:45 healed: registry_unavailable: healed" in log_lines(app)
        assert log_lines(app)[-1] == f"15:30:45 Schema Registry unavailable: {EXACT_LINE}"


async def test_an_instant_fault_needs_no_heal_key_and_h_then_says_nothing_is_active() -> None:
    actions = FakeActions()
    app = fake_app(refresh_s=3600, actions=actions)
    async with app.run_test(size=SIZE) as pilot:
        await choose_fault(pilot, "broker_restart")
        assert "over at once" in text_of(app, ".question")
        await pilot.press("enter")
        await settle(pilot)
        assert actions.calls == ["inject broker_restart", "heal broker_restart", "recover broker_restart"]
        assert log_lines(app)[-1] == f"15:30:45 Broker restart: {EXACT_LINE}"
        assert banner(app) == ""
        await pilot.press("h")
        await pilot.pause()
        assert log_lines(app)[-1] == "15:30:45 no fault is active: f injects one"


async def test_while_a_recovery_is_watched_the_banner_says_so_and_no_second_fault_goes_in() -> None:
    gate = asyncio.Event()
    actions = FakeActions(recovery_gate=gate)
    app = fake_app(refresh_s=3600, actions=actions)
    async with app.run_test(size=SIZE) as pilot:
        await choose_fault(pilot, "broker_restart")
        await pilot.press("y")
        await pilot.pause(0.1)
        assert banner(app) == (
            "RECOVERING from broker restarting (since 15:30:45): waiting for the consumer to catch up…"
        )
        assert app.main.query_one(FaultBanner).has_class("-recovering")
        await pilot.press("f")
        await pilot.pause()
        assert app.screen is app.main
        assert log_lines(app)[-1].endswith(
            "a fault is going in or being recovered from: its outcome comes here"
        )
        await pilot.press("h")
        await pilot.pause()
        assert log_lines(app)[-1].endswith("already healing broker restarting")
        gate.set()
        await settle(pilot)
        assert banner(app) == "" and log_lines(app)[-1] == f"15:30:45 Broker restart: {EXACT_LINE}"


async def test_a_fault_that_cannot_go_in_says_why_and_leaves_no_banner() -> None:
    actions = FakeActions(
        failing={
            "inject": SimulatorUnavailableError(
                "the simulator is not running (nothing answers at 127.0.0.1:19095)"
            )
        }
    )
    app = fake_app(refresh_s=3600, actions=actions)
    async with app.run_test(size=SIZE) as pilot:
        await choose_fault(pilot, "malformed")
        await pilot.press("y")
        await settle(pilot)
        assert banner(app) == ""
        assert log_lines(app)[-1] == (
            "15:30:45 Malformed messages from the exchange: could not inject: "
            "the simulator is not running (nothing answers at 127.0.0.1:19095)"
        )


async def test_a_recovery_that_differs_is_logged_with_where() -> None:
    lost = Recovery(None, "the lake is 4 short", kafka=1_234, iceberg=1_230, missing=4, duplicated=0)
    app = fake_app(refresh_s=3600, actions=FakeActions(recovery=lost))
    async with app.run_test(size=SIZE) as pilot:
        await choose_fault(pilot, "consumer_crash")
        await pilot.press("y")
        await settle(pilot)
        assert log_lines(app)[-1] == (
            "15:30:45 Consumer crash (SIGKILL) and restart: not recovered: the lake is 4 short; "
            "1,234 in Kafka ≠ 1,230 in Iceberg, 4 missing, 0 duplicated"
        )


async def test_v_runs_a_validation_with_live_steps_then_its_results_and_evidence() -> None:
    actions = FakeActions()
    app = fake_app(refresh_s=3600, actions=actions)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, MenuScreen)
        await pilot.press("enter")  # consumer, the first
        await pilot.pause(0.1)
        assert isinstance(app.screen, ValidationScreen)
        steps = text_of(app, "#validation-steps")
        assert "pass in 0.4 s" in steps and "3,000 of 5,000 messages written" in steps and "pending" in steps
        assert "running: 1 of 4 steps done" in text_of(app, "#validation-head")
        assert "15:30:45 validate consumer: started" in log_lines(app)

        actions.hold.set()
        await settle(pilot)
        assert log_lines(app)[-1] == "15:30:45 validate consumer: 5 passed, 0 failed, 1 warning in 14.2 s"
        assert "validate consumer: 5 passed" in text_of(app, "#validation-head")
        table = app.screen.query_one(DataTable)
        assert table.row_count == 6
        assert "Services running" in text_of(app, "#validation-detail")
        for _ in range(4):
            await pilot.press("down")
        await pilot.pause()
        detail = text_of(app, "#validation-detail")
        assert "commit p99 212 ms, above the 200 ms target" in detail
        assert "commit_p99_ms" in detail and "evidence line for commit_p99" in detail


async def test_escape_leaves_the_run_going_and_r_reopens_its_results() -> None:
    actions = FakeActions()
    app = fake_app(refresh_s=3600, actions=actions)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert log_lines(app)[-1] == "15:30:45 no validation has run yet: v runs one"
        await pilot.press("v", "enter")
        await pilot.pause(0.1)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
        actions.hold.set()
        await settle(pilot)
        assert log_lines(app)[-1].endswith("validate consumer: 5 passed, 0 failed, 1 warning in 14.2 s")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ValidationScreen)
        assert app.screen.query_one(DataTable).row_count == 6


async def test_x_cancels_a_running_validation_and_its_clean_up_still_runs() -> None:
    actions = FakeActions()
    app = fake_app(refresh_s=3600, actions=actions)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("v", "enter")
        await pilot.pause(0.1)
        await pilot.press("x")
        await settle(pilot)
        assert "clean-up ran" in actions.calls
        lines = log_lines(app)
        assert "15:30:45 validate consumer: cancelling; its clean-up steps still run" in lines
        assert lines[-1] == "15:30:45 validate consumer: cancelled after 2 of 4 steps; 2 passed, 0 failed"
        assert "cancelled after 2 of 4 steps" in text_of(app, "#validation-head")


async def test_the_tour_can_await_a_whole_fault_and_a_whole_validation() -> None:
    actions = FakeActions()
    actions.hold.set()
    app = fake_app(refresh_s=3600, actions=actions)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        recovery = await app.run_fault("object_store", hold=0)
        assert recovery is not None and recovery.ok
        assert log_lines(app)[-1] == f"15:30:45 Object store temporary failure: {EXACT_LINE}"
        report = await app.run_validation("consumer")
        assert report is not None and report.passed
        assert app.validation is not None and app.validation.report is report


async def test_help_lists_the_operator_keys() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        described = dict(app.screen.keys)
        assert described["s"] == "Consumer on/off" and described["f"] == "Faults"
        assert described["h"] == "Heal" and described["v"] == "Validate"
        assert described["r"] == "Last validation results"
