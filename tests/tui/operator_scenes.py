"""The steps to the operator keys' pictures: a fault's banner, a validation running, its results."""

from __future__ import annotations

from textual.pilot import Pilot

from k2tui.tui.app import CockpitApp
from tests.tui.fake_actions import FakeActions
from tests.tui.fakes import settled_frame


def _app(pilot: Pilot[None]) -> CockpitApp:
    app = pilot.app
    assert isinstance(app, CockpitApp)
    return app


async def fault_banner(pilot: Pilot[None]) -> None:
    """The registry stopped by hand: the red banner and the injection in the event log."""
    await settled_frame(pilot)
    await pilot.press("f", "down", "enter", "y")
    await _app(pilot).workers.wait_for_complete()
    await pilot.pause()


async def validation_running(pilot: Pilot[None]) -> None:
    """`validate consumer` held mid-way through its second step."""
    await settled_frame(pilot)
    app = _app(pilot)
    await pilot.press("v", "enter")
    for _ in range(100):
        await pilot.pause(0.01)
        if app.validation is not None and len(app.validation.steps) > 1 and app.validation.steps[1].detail:
            break
    await pilot.pause()


async def validation_results(pilot: Pilot[None]) -> None:
    """`validate consumer` finished, its warning highlighted with its figures and evidence."""
    await settled_frame(pilot)
    app = _app(pilot)
    assert isinstance(app.actions, FakeActions)
    app.actions.hold.set()
    await pilot.press("v", "enter")
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("down", "down", "down", "down")
    await pilot.pause()
