"""The Checklists pane and the walk-through (`c`): choose a checklist, read an item, run its checks with
visible progress, confirm a manual item with a note, export Markdown; the pane follows."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, OptionList, ProgressBar, Static

from k2tui.tui.app import CockpitApp
from k2tui.tui.screens.checklist_walk import ChecklistChooser
from tests.tui.fake_desks import EXPORTS, FakeBook
from tests.tui.fakes import FakeSources, fake_app, settled_frame
from tests.tui.screen_text import pane_text, static_text
from tests.tui.waiting import until
from tests.tui.walk_scenes import choose_item, open_walk

SIZE = (120, 40)


def shown(app: CockpitApp, selector: str) -> str:
    """A Static's text as the user reads it."""
    return static_text(app.screen.query_one(selector, Static))


async def test_the_pane_shows_each_checklists_progress() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=(160, 50)) as pilot:
        await settled_frame(pilot)
        text = pane_text(app, "checklists")
        assert "environment local" in text
        rows = {words[0]: words[-3:] for words in map(str.split, text.splitlines()) if words}
        assert rows["pre-deployment"] == ["2/12", "1", "9"]  # done, failed, pending
        assert rows["post-deployment"] == ["1/10", "0", "9"]
        assert rows["technical-debt"] == ["0/9", "0", "9"]


async def test_escape_closes_the_chooser_and_the_walk_lists_items_with_their_status() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ChecklistChooser), "the chooser opens")
        assert "Post-Deployment Checklist" in str(
            app.screen.query_one(OptionList).get_option_at_index(1).prompt
        )
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, "back on the main screen")
        screen = await open_walk(pilot)
        items = screen.query_one("#walk-items", OptionList)
        prompts = [str(items.get_option_at_index(i).prompt) for i in range(items.option_count)]
        assert prompts[0].startswith("confirmed") and "All unit tests passing" in prompts[0]
        assert prompts[4].startswith("failed") and "DLQ functionality validated" in prompts[4]
        assert prompts[2].startswith("pending") and prompts[1].endswith("(manual)")
        assert not prompts[2].endswith("(manual)")
        await choose_item(pilot, screen, "dlq-validated")
        detail = shown(app, "#walk-item")
        assert "checks: pipeline.error_handling" in detail
        assert "last outcome: FAILED at 2026-01-13 15:12 UTC" in detail
        assert "0 of 5 malformed messages reached the DLQ" in detail
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, "escape leaves the walk")


async def test_r_runs_the_linked_checks_with_progress_then_shows_the_verdict_and_the_pane_follows() -> None:
    gate = asyncio.Event()
    sources = FakeSources(book=FakeBook(gate=gate))
    app = fake_app(sources, refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_walk(pilot)
        await choose_item(pilot, screen, "e2e-validation")
        await pilot.press("r")
        bar = screen.query_one("#walk-bar", ProgressBar)
        await until(pilot, lambda: "2,500 of 5,000 messages" in shown(app, "#walk-status"), "progress shown")
        assert "validate consumer: step 2 of 3" in shown(app, "#walk-status")
        assert bar.display and bar.percentage == 0.5
        await pilot.press("escape")  # a run under way keeps the screen
        await pilot.pause()
        assert app.screen is screen
        gate.set()
        await until(pilot, lambda: "PASSED e2e-validation" in shown(app, "#walk-status"), "the verdict")
        assert not bar.display
        detail = shown(app, "#walk-item")
        assert "last outcome: PASSED" in detail and "consumer: PASS — as expected" in detail
        assert "5,000 sent, 5,000 in Iceberg, 0 duplicates" in detail
        assert str(screen.query_one("#walk-items", OptionList).get_option_at_index(2).prompt).startswith(
            "passed"
        )
        await pilot.press("escape")
        app.refresh_sources()  # the next tick
        await until(pilot, lambda: "3/12" in pane_text(app, "checklists"), "the pane counts the new pass")


async def test_enter_runs_an_item_too_and_a_manual_item_asks_for_m() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_walk(pilot)
        await choose_item(pilot, screen, "graceful-shutdown")
        await pilot.press("enter")
        await until(pilot, lambda: "PASSED graceful-shutdown" in shown(app, "#walk-status"), "enter ran it")
        await choose_item(pilot, screen, "unit-tests")
        await pilot.press("r")
        await pilot.pause()
        assert any("press m to confirm" in str(n.message) for n in app._notifications)


async def test_m_confirms_a_manual_item_with_a_note_and_an_empty_note_is_refused() -> None:
    sources = FakeSources()
    app = fake_app(sources, refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_walk(pilot, down=2)  # technical-debt
        await choose_item(pilot, screen, "api-mismatches")
        await pilot.press("m")
        note = screen.query_one("#walk-note", Input)
        await until(pilot, lambda: note.display and note.has_focus, "the note input opens")
        await pilot.press("enter")
        await pilot.pause()
        assert note.display and any("say in the note" in str(n.message) for n in app._notifications)
        note.value = "ruff clean, 12 call sites reviewed"
        await pilot.press("enter")
        await until(pilot, lambda: "CONFIRMED api-mismatches" in shown(app, "#walk-status"), "saved")
        assert not note.display
        assert "note: ruff clean, 12 call sites reviewed" in shown(app, "#walk-item")
        saved = sources.book.progress_now.item("technical-debt", "api-mismatches")
        assert saved.status.value == "confirmed" and saved.note == "ruff clean, 12 call sites reviewed"
        await choose_item(pilot, screen, "error-classification")
        await pilot.press("m")
        await pilot.pause()
        assert not note.display
        assert any("press r to run them" in str(n.message) for n in app._notifications)


async def test_escape_cancels_a_note_and_x_exports_markdown_saying_where() -> None:
    sources = FakeSources()
    app = fake_app(sources, refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_walk(pilot)
        await pilot.press("m")
        await until(pilot, lambda: screen.query_one("#walk-note", Input).display, "the note input opens")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and not screen.query_one("#walk-note", Input).display
        await pilot.press("x")
        where = EXPORTS / "local-pre-deployment.md"
        await until(pilot, lambda: str(where) in shown(app, "#walk-status"), "the export path shown")
        markdown = sources.book.exported["pre-deployment"]
        assert "- [x] All unit tests passing (80%+ coverage) — **confirmed**" in markdown


async def test_a_failing_run_says_why_in_the_status_line() -> None:
    class BrokenBook(FakeBook):
        async def run_item(self, *args: object) -> None:  # type: ignore[override]
            raise ConnectionError("broker at 127.0.0.1:19092 refused")

    app = fake_app(FakeSources(book=BrokenBook()), refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_walk(pilot)
        await choose_item(pilot, screen, "e2e-validation")
        await pilot.press("r")
        expected = "the run stopped: broker at 127.0.0.1:19092 refused"
        await until(pilot, lambda: expected in shown(app, "#walk-status"), "the failure")
