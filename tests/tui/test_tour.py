"""The fault-recovery tour (T, `k2tui demo --tour`): every fault in turn, then one verdict."""

from __future__ import annotations

from dataclasses import replace

from textual.pilot import Pilot

from k2tui.tui.app import CockpitApp
from k2tui.tui.widgets.event_log import EventLog
from k2tui.validate.live_faults import MENU
from tests.tui.fake_actions import EXACT, FakeActions
from tests.tui.fakes import fake_app

SIZE = (160, 50)


def quick(app: CockpitApp) -> CockpitApp:
    app.tour_pause_s = app.tour_hold_s = 0.0
    return app


async def finished_tour(pilot: Pilot[None], app: CockpitApp) -> list[str]:
    await pilot.press("T")
    assert app.tour_worker is not None
    await app.tour_worker.wait()
    await pilot.pause()
    return list(app.main.query_one(EventLog).recent)


def verdict(log: list[str]) -> str:
    """The tour's closing line (the panes' first refreshes may be logged after it)."""
    return [line for line in log if " tour: " in line][-1]


async def test_the_tour_runs_every_fault_and_says_nothing_was_lost() -> None:
    actions = FakeActions()
    app = quick(fake_app(actions=actions))
    async with app.run_test(size=SIZE) as pilot:
        log = await finished_tour(pilot, app)
    assert [c for c in actions.calls if c.startswith("inject")] == [f"inject {f.id}" for f in MENU]
    assert [c for c in actions.calls if c.startswith("recover")] == [f"recover {f.id}" for f in MENU]
    assert any(f"tour 1/{len(MENU)}: {MENU[0].title}" in line for line in log)
    assert verdict(log).endswith(
        f"tour: {len(MENU)} faults, all recovered (slowest 6.2 s); "
        f"{1_234 * len(MENU):,} trades in their windows, nothing lost, nothing written twice"
    )


async def test_a_tour_with_a_loss_names_the_faults_that_did_not_recover_exactly() -> None:
    actions = FakeActions(recovery=replace(EXACT, iceberg=1_233, missing=1))
    app = quick(fake_app(actions=actions))
    async with app.run_test(size=SIZE) as pilot:
        log = await finished_tour(pilot, app)
    titles = ", ".join(fault.title for fault in MENU)
    assert verdict(log).endswith(f"tour: 0 of {len(MENU)} faults recovered exactly; not: {titles}")


async def test_the_tour_starts_by_itself_for_demo_tour() -> None:
    actions = FakeActions()
    app = quick(fake_app(actions=actions))
    app.start_tour = True
    async with app.run_test(size=SIZE) as pilot:
        assert app.tour_worker is not None
        await app.tour_worker.wait()
        await pilot.pause()
    assert f"inject {MENU[-1].id}" in actions.calls
