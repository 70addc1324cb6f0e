"""The pictures of the checklist walk-through, the DLQ entry view and the light theme, and the steps
that reach them (the walk tests use the same steps)."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import OptionList

from k2tui.tui.app import CockpitApp
from k2tui.tui.screens.checklist_walk import ChecklistChooser, ChecklistScreen
from k2tui.tui.screens.dlq_entry import DlqEntryScreen
from tests.tui.fakes import settled_frame, still_app
from tests.tui.screen_text import static_text
from tests.tui.waiting import until


async def open_walk(pilot: Pilot[None], down: int = 0) -> ChecklistScreen:
    """`c`, then the checklist `down` rows below the first."""
    await pilot.press("c")
    await until(pilot, lambda: isinstance(pilot.app.screen, ChecklistChooser), "the chooser opens")
    await pilot.press(*["down"] * down, "enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, ChecklistScreen), "the walk screen opens")
    screen = pilot.app.screen
    assert isinstance(screen, ChecklistScreen)
    await until(pilot, lambda: screen.query_one("#walk-items", OptionList).option_count > 0, "items listed")
    return screen


async def choose_item(pilot: Pilot[None], screen: ChecklistScreen, item_id: str) -> None:
    index = [item.id for item in screen.checklist.items].index(item_id)
    screen.query_one("#walk-items", OptionList).highlighted = index
    await pilot.pause()


async def checklist(pilot: Pilot[None]) -> None:
    """The pre-deployment walk: the E2E item run, its verdict and evidence shown."""
    await settled_frame(pilot)
    screen = await open_walk(pilot)
    await choose_item(pilot, screen, "e2e-validation")
    await pilot.press("r")
    status = screen.query_one("#walk-status")
    await until(pilot, lambda: "PASSED e2e-validation" in static_text(status), "the verdict")


async def dlq_entry(pilot: Pilot[None]) -> None:
    """The DLQ pane's first entry opened: facts, decoded fields, the payload indented; replayed."""
    await settled_frame(pilot)
    await pilot.press("d", "down", "down", "enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, DlqEntryScreen), "the entry opens")
    screen = pilot.app.screen
    await until(pilot, lambda: "payload" in static_text(screen.query_one("#dlq-entry-body")), "the entry")
    await pilot.press("p")
    status = screen.query_one("#dlq-entry-status")
    await until(pilot, lambda: "replayed: " in static_text(status), "the replay's outcome")
    await until(pilot, lambda: "replayed    " in static_text(screen.query_one("#dlq-entry-body")), "reloaded")


def light_app() -> CockpitApp:
    return still_app(theme="light")


async def scrolled_to_the_end(pilot: Pilot[None]) -> None:
    """The main screen scrolled down to its last panes (DLQ, Checklists, Event log)."""
    await settled_frame(pilot)
    pilot.app.screen.query_one("#panes").scroll_end(animate=False)
    await pilot.pause()
