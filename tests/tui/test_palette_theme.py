"""The command palette (ctrl+p) offers every key with its description and the theme switch; `t` and the
`tui.theme` setting choose between the dark and the light theme."""

from __future__ import annotations

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input

from k2tui.config import SettingsError, resolve_settings
from k2tui.tui.screens.checklist_walk import ChecklistChooser
from k2tui.tui.widgets.dlq import DlqPane
from tests.tui.fakes import settled_frame, still_app
from tests.tui.waiting import until

SIZE = (120, 40)


async def palette_hits(pilot: Pilot[None], query: str, first: str) -> list[str]:
    """ctrl+p, type `query`, wait for `first` to head the commands offered, and read them all."""
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), "the palette opens")
    pilot.app.screen.query_one(Input).value = query
    hits = pilot.app.screen.query_one(CommandList)
    await until(
        pilot, lambda: hits.option_count > 0 and first in str(hits.get_option_at_index(0).prompt), first
    )
    return [str(hits.get_option_at_index(i).prompt) for i in range(hits.option_count)]


async def test_every_described_key_of_the_app_is_a_command_with_its_key_and_textuals_stay() -> None:
    app = still_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        commands = {c.title: c.help for c in app.get_system_commands(app.main)}
        for binding in app.BINDINGS:
            assert commands[binding.description]  # type: ignore[union-attr]
        assert commands["Checklists"] == "key c" and commands["DLQ entries"] == "key d"
        assert commands["Switch to light theme"] == "key t"
        assert {"Theme", "Quit", "Keys", "Screenshot"} <= set(commands)
        assert list(commands).count("Quit") == 1


async def test_a_palette_command_runs_its_action() -> None:
    app = still_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        hits = await palette_hits(pilot, "checkl", "Checklists")
        assert "key c" in hits[0]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ChecklistChooser), "the chooser opens")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, "back")
        await palette_hits(pilot, "DLQ en", "DLQ entries")
        await pilot.press("enter")
        await until(pilot, lambda: app.main.query_one(DlqPane).has_focus, "the DLQ pane takes focus")


async def test_t_and_the_palette_switch_between_dark_and_light() -> None:
    app = still_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        assert app.theme == "textual-dark"
        await pilot.press("t")
        await pilot.pause()
        assert app.theme == "textual-light"
        await palette_hits(pilot, "to dark", "Switch to dark theme")
        await pilot.press("enter")
        await until(pilot, lambda: app.theme == "textual-dark", "dark again")


async def test_the_setting_chooses_the_start_theme() -> None:
    app = still_app("light")
    async with app.run_test(size=SIZE):
        assert app.theme == "textual-light"


def test_tui_theme_is_a_setting_dark_by_default() -> None:
    assert resolve_settings(env={}).settings.tui.theme == "dark"
    assert resolve_settings(env={"K2_TUI_THEME": "light"}).settings.tui.theme == "light"
    with pytest.raises(SettingsError, match="K2_TUI_THEME"):
        resolve_settings(env={"K2_TUI_THEME": "blue"})
