"""The cockpit's real checklist book and DLQ desk on a home of the test's own, with no stack running: the
progress file and exports they write, the DLQ read again only when it changed, an entry described as
`k2tui dlq show` describes it, and a replay that cannot reach the stack saying so."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from k2tui.ingest.dlq import DeadLetterError, DeadLetterQueue, Landing, ReplayRecord, dlq_dir, record_replay
from k2tui.stack.layout import StackLayout
from k2tui.tui.checklist_book import LiveChecklistBook, tally
from k2tui.tui.dead_letters import DlqReader, LiveDeadLetterDesk
from k2tui.validate.checklist import ItemFinished
from k2tui.validate.health import HealthOptions
from k2tui.validate.progress import ItemStatus, load_progress, progress_file
from tests.integration.stack_fixture import throwaway_settings

JSON_TRADE = b'{"symbol":"BTCUSDT","price":"97000.5"}'


def desk_for(tmp_path: Path) -> LiveDeadLetterDesk:
    settings, _ = throwaway_settings(tmp_path)  # free ports where nothing listens
    endpoints = StackLayout(settings).endpoints
    return LiveDeadLetterDesk(
        DlqReader(dlq_dir(settings)),
        bootstrap=endpoints.kafka_bootstrap,
        registry_url=endpoints.registry_url,
        partitions=1,
    )


def test_the_dlq_is_read_again_only_when_a_file_changed(tmp_path: Path) -> None:
    queue = DeadLetterQueue(tmp_path, "consumer")
    first = queue.put("not Avro", b"\x01\x02", topic="t", partition=0, offset=1)
    queue.put("schema mismatch", JSON_TRADE, topic="t", partition=0, offset=2)
    reader = DlqReader(tmp_path)
    assert [letter.reason for letter in reader.letters()] == ["not Avro", "schema mismatch"]
    assert [letter.reason for letter in reader.letters()] == ["not Avro", "schema mismatch"]
    assert reader.reads == 1
    queue.put("not Avro", b"\x03", topic="t", partition=0, offset=3)
    assert len(reader.letters()) == 3 and reader.reads == 2
    record_replay(tmp_path, ReplayRecord(id=first.id, replayed_at=first.failed_at, landed=[]))
    reader.letters()
    assert reader.reads == 3  # the replay log counts too: an entry's facts name its replays


def test_ten_thousand_entries_cost_one_read_not_one_a_second(tmp_path: Path) -> None:
    queue = DeadLetterQueue(tmp_path, "consumer")
    for offset in range(10_000):
        queue.put("not Avro", b"\x00" * 40, topic="t", partition=0, offset=offset)
    reader = DlqReader(tmp_path)
    began = time.perf_counter()
    reader.letters()
    first = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(10):
        reader.letters()
    unchanged = (time.perf_counter() - began) / 10
    assert reader.reads == 1
    assert unchanged < first / 20, (first, unchanged)


async def test_an_entry_has_the_facts_the_decoded_fields_and_the_payload_of_dlq_show(tmp_path: Path) -> None:
    desk = desk_for(tmp_path)
    queue = DeadLetterQueue(desk.reader.directory, "consumer")
    letter = queue.put(
        "schema mismatch: missing field side",
        JSON_TRADE,
        error_type="SchemaError",
        topic="market.crypto.trades.binance",
        partition=0,
        offset=41,
        decoded={"symbol": "BTCUSDT"},
    )
    view = await desk.entry(letter.id)
    assert view.facts["error"] == "schema mismatch: missing field side"
    assert view.facts["from"] == "market.crypto.trades.binance[0]@41"
    assert "Kafka time" not in view.facts  # empty facts are left out, as `dlq show` does
    assert view.decoded == '{\n  "symbol": "BTCUSDT"\n}'
    assert view.payload == '{\n  "symbol": "BTCUSDT",\n  "price": "97000.5"\n}'
    assert view.payload_bytes == len(JSON_TRADE)
    landing = Landing("market.crypto.trades.binance", 0, 99)
    record_replay(
        desk.reader.directory, ReplayRecord(id=letter.id, replayed_at=letter.failed_at, landed=[landing])
    )
    assert "market.crypto.trades.binance[0]@99" in (await desk.entry(letter.id)).facts["replayed"]


async def test_a_replay_without_a_stack_says_to_start_it(tmp_path: Path) -> None:
    desk = desk_for(tmp_path)
    letter = DeadLetterQueue(desk.reader.directory, "consumer").put(
        "not Avro", b"\x00\x00\x00\x00\x01\x02", topic="market.crypto.trades.binance", partition=0, offset=7
    )
    with pytest.raises(DeadLetterError, match="k2tui up"):
        await desk.replay(letter.id)


async def test_the_book_confirms_exports_and_runs_into_the_environments_progress_file(tmp_path: Path) -> None:
    settings, _ = throwaway_settings(tmp_path)
    book = LiveChecklistBook(settings, {"health": HealthOptions(window=0.0)})
    pre = book.checklists()[0]
    entry = await book.confirm(pre, pre.item("unit-tests"), "412 passed")
    assert entry.status is ItemStatus.CONFIRMED
    assert load_progress(settings).item("pre-deployment", "unit-tests").note == "412 passed"
    path = await book.export(pre)
    assert path.parent == progress_file(settings).parent
    assert "- [x] All unit tests passing (80%+ coverage) — **confirmed**" in path.read_text()
    post = book.checklists()[1]
    events: list[object] = []
    began = time.monotonic()
    entry = await book.run_item(post, post.item("consumer-group"), events.append)
    assert time.monotonic() - began < 30
    assert entry.status is ItemStatus.FAILED  # nothing runs here
    assert any(isinstance(event, ItemFinished) for event in events)
    assert entry.evidence and entry.evidence[0].startswith("health.consumer_group: ")
    counts = {t.name: (t.done, t.failed) for t in tally(await book.progress(), book.checklists()).tallies}
    assert counts["pre-deployment"] == (1, 0) and counts["post-deployment"] == (0, 1)
