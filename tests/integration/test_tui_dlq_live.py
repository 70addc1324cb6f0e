"""A dead letter on the session's real stack, opened and replayed through the cockpit as a user would:
`d`, Enter, `p`; the same replay `k2tui dlq replay --id` makes, recorded once."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

from k2tui.config import DlqSettings
from k2tui.ingest.dlq import DeadLetterQueue, read_replays
from k2tui.stack.supervisor import LocalStack
from k2tui.tui.app import CockpitApp
from k2tui.tui.data import LiveSources
from k2tui.tui.screens.dlq_entry import DlqEntryScreen
from tests.integration.pipeline import until
from tests.tui.screen_text import pane_text, static_text


async def test_a_dead_letter_is_opened_and_replayed_from_the_cockpit(
    stack: LocalStack, tmp_path: Path
) -> None:
    settings = stack.layout.settings
    attached = LocalStack(dataclasses.replace(settings, dlq=DlqSettings(directory=str(tmp_path))))
    trade_id = random.randrange(10**12, 10**13)  # unseen by the other tests of the session
    raw = json.dumps(
        {
            "stream": "btcusdt@trade",
            "data": {
                "e": "trade",
                "E": 1795276800158,
                "s": "BTCUSDT",
                "t": trade_id,
                "p": "86414.17",
                "q": "0.01879000",
                "T": 1795276800156,
                "m": True,
                "M": True,
            },
        }
    )
    letter = DeadLetterQueue(tmp_path, "stream-binance").put(
        "message of 230 bytes exceeds the 100-byte limit",
        raw,
        error_type="Rejected",
        exchange="binance",
        url="wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade",
    )
    app = CockpitApp(LiveSources(attached))
    async with app.run_test(size=(160, 50)) as pilot:
        await until(lambda: "1 entry ·" in pane_text(app, "dlq"), 15, "the DLQ pane listing the entry")
        await pilot.press("d", "enter")
        await until(lambda: isinstance(app.screen, DlqEntryScreen), 5, "the entry screen")

        def body() -> str:
            return static_text(app.screen.query_one("#dlq-entry-body"))

        def status() -> str:
            return static_text(app.screen.query_one("#dlq-entry-status"))

        await until(lambda: "exceeds the 100-byte limit" in body(), 10, "the entry read")
        assert f'"t": {trade_id},' in body()  # the payload, indented
        await pilot.press("p")
        await until(lambda: not status().startswith(("p replays", "replaying")), 30, "the replay's outcome")
        assert status().startswith("replayed: → market.crypto.trades.binance"), status()
        await until(lambda: "replayed    " in body(), 10, "the facts naming the replay")
        await pilot.press("p")
        await until(lambda: status().startswith("already replayed"), 30, "a second replay refused")
        await pilot.press("q")
    assert app.return_code == 0
    assert [len(r.landed) for r in read_replays(tmp_path)[letter.id]] == [1]
