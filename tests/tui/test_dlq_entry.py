"""The DLQ pane browsed with the keyboard (`d`) or the mouse, an entry opened with Enter, and replayed."""

from __future__ import annotations

import msgspec

from k2tui.tui.app import CockpitApp
from k2tui.tui.data import DlqSnapshot
from k2tui.tui.screens.dlq_entry import DlqEntryScreen
from k2tui.tui.widgets.dlq import DlqPane
from tests.tui.fake_desks import LETTERS
from tests.tui.fakes import fake_app, settled_frame
from tests.tui.screen_text import pane_text, static_text
from tests.tui.waiting import until

SIZE = (120, 40)
NOT_AVRO = LETTERS[1].id
MISSING_PRICE = LETTERS[3].id
"""The newest of the most frequent reason: the first entry the pane lists."""


def entry_text(app: CockpitApp) -> str:
    return static_text(app.screen.query_one("#dlq-entry-body"))


def status_text(app: CockpitApp) -> str:
    return static_text(app.screen.query_one("#dlq-entry-status"))


async def test_the_pane_lists_entries_grouped_by_reason() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        lines = [line.strip() for line in pane_text(app, "dlq").splitlines() if line.strip()]
        assert lines[0] == "4 entries · d to browse"
        assert lines[1] == "schema mismatch: missing field price ×3"
        assert lines[2] == "44444444  15:20:09  consumer  binance[0]@11994"
        assert lines[5] == "not Avro ×1"


async def test_d_focuses_the_pane_arrows_choose_and_enter_opens_the_entry_escape_returns() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        await pilot.press("d")
        await pilot.pause()
        pane = app.main.query_one(DlqPane)
        assert pane.has_focus and "enter opens" in pane_text(app, "dlq")
        await pilot.press("down", "down", "down", "enter")
        await until(pilot, lambda: isinstance(app.screen, DlqEntryScreen), "the entry opens")
        await until(pilot, lambda: "not Avro" in entry_text(app), "the entry is read")
        text = entry_text(app)
        assert "error type  WireFormatError" in text
        assert "from        market.crypto.trades.binance[0]@11992" in text
        assert "payload (17 bytes)" in text
        assert "00000000  7f 6e 6f 74 2d 61 76 72 6f 00 01 02 74 72 61 64  |.not-avro...trad|" in text
        assert "decoded" not in text.split("payload")[0]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, "escape returns")
        assert pane.has_focus
        await pilot.press("escape")
        await pilot.pause()
        assert not pane.has_focus and "d to browse" in pane_text(app, "dlq")


async def test_a_json_entry_shows_its_decoded_fields_and_the_payload_indented() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        await pilot.press("d", "down", "down", "enter")  # the oldest of the three: it decoded
        await until(pilot, lambda: "payload" in entry_text(app), "the entry is read")
        decoded, payload = entry_text(app).split("decoded")[1].split("payload")
        assert '"symbol": "BTCUSDT"' in decoded and '"side": "BUY"' in decoded
        assert '\n  "quantity": "0.015",\n' in payload


async def test_p_replays_then_says_already_replayed_and_a_refused_entry_still_fails() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        await pilot.press("d", "enter")
        await until(pilot, lambda: isinstance(app.screen, DlqEntryScreen), "the entry opens")
        assert app.screen.letter_id == MISSING_PRICE
        await pilot.press("p")
        await until(pilot, lambda: "replayed: →" in status_text(app), "the replay's outcome")
        assert "market.crypto.trades.binance[0]@12001" in status_text(app)
        await until(pilot, lambda: "replayed    2026-01-13" in entry_text(app), "the facts name the replay")
        await pilot.press("p")
        await until(pilot, lambda: status_text(app).startswith("already replayed"), "a second replay")
        await pilot.press("escape", "down", "down", "down", "enter")
        await until(pilot, lambda: getattr(app.screen, "letter_id", "") == NOT_AVRO, "the other entry")
        await pilot.press("p")
        await until(pilot, lambda: status_text(app).startswith("still fails: not Confluent"), "refused again")


async def test_a_click_on_an_entry_opens_it() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=(160, 50)) as pilot:  # wide: the DLQ pane is in view
        await settled_frame(pilot)
        pane = app.main.query_one(DlqPane)
        line = pane.line_entries.index(1)  # the second entry listed
        await pilot.click(DlqPane, offset=(4, 1 + line))  # inside the border
        await until(pilot, lambda: isinstance(app.screen, DlqEntryScreen), "the click opens it")
        assert app.screen.letter_id == LETTERS[2].id


async def test_an_entry_that_cannot_be_read_says_why() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settled_frame(pilot)
        await app.push_screen(DlqEntryScreen(app.sources.desk, "ffffffffffffffff"))
        await until(pilot, lambda: "unavailable: " in entry_text(app), "the reason")


async def test_d_on_a_small_terminal_brings_up_the_tab_with_the_dlq() -> None:
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled_frame(pilot)
        pane = app.main.query_one(DlqPane)
        assert not app.main.query_one("#lake").display  # the Overview tab shows; the DLQ is on Lake
        await pilot.press("d")
        await until(pilot, lambda: pane.has_focus, "the DLQ pane takes focus")
        assert app.main.tab == "lake"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DlqEntryScreen), "the entry opens")


async def test_a_long_queue_shows_a_window_that_follows_the_cursor() -> None:
    letters = tuple(
        msgspec.structs.replace(
            LETTERS[1], id=f"{n:016x}", offset=n, failed_at=LETTERS[1].failed_at.replace(minute=n)
        )
        for n in range(20)
    )
    app = fake_app(refresh_s=3600)
    async with app.run_test(size=(160, 50)) as pilot:
        await settled_frame(pilot)
        pane = app.main.query_one(DlqPane)
        pane.render_snapshot(DlqSnapshot("/tmp/dlq", [("not Avro", 20)], letters))
        assert "… 12 more below" in pane_text(app, "dlq")
        await pilot.press("d", *["down"] * 10)
        await pilot.pause()
        text = pane_text(app, "dlq")
        assert "… 6 more above" in text and "… 6 more below" in text
        assert pane.chosen is not None and pane.chosen.id == "0000000000000009" and "binance[0]@9" in text
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "letter_id", "") == "0000000000000009", "opened")
