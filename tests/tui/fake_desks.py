"""Deterministic stand-ins for the checklist book and the dead-letter desk, for the cockpit's tests and
screenshots: fixed entries and progress, runs that finish at once (or wait for a gate), no files."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from k2tui.ingest.dlq import DeadLetter, Landing, ReplayRecord, find_dead_letter
from k2tui.ingest.replay import ReplayOutcome, ReplayStatus
from k2tui.tui.checklist_book import ChecklistsSnapshot, tally
from k2tui.tui.dead_letters import EntryView, ReplayResult, entry_view, replay_result
from k2tui.validate.checklist import (
    Checklist,
    ChecklistItem,
    WalkSink,
    confirm,
    export_markdown,
    load_checklists,
)
from k2tui.validate.procedure import ProcedureStarted, StepProgress, StepStarted
from k2tui.validate.progress import ItemProgress, ItemStatus, Progress

WALKED = datetime(2026, 1, 13, 15, 12, tzinfo=UTC)
"""When the fake progress says the items were walked."""
FAILED_AT = datetime(2026, 1, 13, 15, 20, 5, tzinfo=UTC)
EXPORTS = Path("/tmp/k2tui-fake-checklists")


def _letter(n: int, reason: str, raw: bytes, **fields: object) -> DeadLetter:
    return DeadLetter(
        id=f"{n:x}" * 16,
        failed_at=FAILED_AT.replace(second=5 + n),
        source="consumer",
        error_type="SchemaError" if "schema" in reason else "WireFormatError",
        reason=reason,
        raw_base64=base64.b64encode(raw).decode(),
        topic="market.crypto.trades.binance",
        partition=0,
        offset=11_990 + n,
        **fields,  # type: ignore[arg-type]
    )


MISSING_PRICE = b'{"symbol":"BTCUSDT","side":"BUY","quantity":"0.015","timestamp":1768318205000000}'
LETTERS = (
    _letter(
        1, "schema mismatch: missing field price", MISSING_PRICE, decoded={"symbol": "BTCUSDT", "side": "BUY"}
    ),
    _letter(2, "not Avro", b"\x7fnot-avro\x00\x01\x02trade"),
    _letter(3, "schema mismatch: missing field price", MISSING_PRICE),
    _letter(4, "schema mismatch: missing field price", MISSING_PRICE),
)


@dataclass
class FakeDesk:
    """The entries above; a first replay lands (or still fails for "not Avro"), a second was done before."""

    replays: dict[str, list[ReplayRecord]] = field(default_factory=dict)

    def _letter(self, letter_id: str) -> DeadLetter:
        return find_dead_letter(LETTERS, letter_id, Path("/tmp/dlq"))

    async def entry(self, letter_id: str) -> EntryView:
        return entry_view(self._letter(letter_id), self.replays.get(letter_id, []))

    async def replay(self, letter_id: str) -> ReplayResult:
        letter = self._letter(letter_id)
        if letter_id in self.replays:
            return replay_result(ReplayOutcome(letter, ReplayStatus.DONE_BEFORE, "replayed before"))
        if letter.reason == "not Avro":
            detail = "not Confluent wire format: the first byte is 0x7f, not 0"
            return replay_result(ReplayOutcome(letter, ReplayStatus.SKIPPED, detail))
        landing = Landing("market.crypto.trades.binance", 0, 12_001)
        self.replays[letter_id] = [ReplayRecord(id=letter_id, replayed_at=WALKED, landed=[landing])]
        return replay_result(ReplayOutcome(letter, ReplayStatus.REPLAYED, f"→ {landing}"))


def _walked(status: ItemStatus, note: str, evidence: list[str] | None = None) -> ItemProgress:
    return ItemProgress(status=status, when=WALKED, note=note, evidence=evidence or [])


def walked_progress() -> Progress:
    progress = Progress(environment="local")
    for item, entry in {
        "unit-tests": _walked(ItemStatus.CONFIRMED, "412 passed, 84% coverage"),
        "integration-tests": _walked(ItemStatus.CONFIRMED, "96 passed"),
        "dlq-validated": _walked(
            ItemStatus.FAILED,
            "pipeline.error_handling fail: 0 of 5 malformed messages reached the DLQ",
            ["pipeline.error_handling: FAIL — 0 of 5 malformed messages reached the DLQ"],
        ),
    }.items():
        progress.record("pre-deployment", item, entry)
    progress.record("post-deployment", "consumer-group", _walked(ItemStatus.PASSED, "group stable"))
    return progress


@dataclass
class FakeBook:
    """The real checklists over in-memory progress; a run passes every linked check, after `gate` opens
    when one is given (so a test can watch the run under way)."""

    progress_now: Progress = field(default_factory=walked_progress)
    gate: asyncio.Event | None = None
    exported: dict[str, str] = field(default_factory=dict)
    loaded: list[Checklist] = field(default_factory=load_checklists)

    def checklists(self) -> list[Checklist]:
        return self.loaded

    def snapshot(self) -> ChecklistsSnapshot:
        return tally(self.progress_now, self.checklists())

    async def progress(self) -> Progress:
        return self.progress_now

    async def run_item(self, checklist: Checklist, item: ChecklistItem, on_event: WalkSink) -> ItemProgress:
        procedure = item.procedures[0]
        on_event(ProcedureStarted(procedure, f"validate {procedure}", ("prepare", "measure", "judge")))
        on_event(StepStarted(procedure, 1, 3, "measure"))
        on_event(StepProgress(procedure, 1, 3, "2,500 of 5,000 messages", 0.5))
        if self.gate is not None:
            await self.gate.wait()
        evidence = []
        for link in item.links:
            evidence += [f"{link}: PASS — as expected", "  5,000 sent, 5,000 in Iceberg, 0 duplicates"]
        entry = _walked(ItemStatus.PASSED, "every linked check passed", evidence)
        self.progress_now.record(checklist.name, item.id, entry)
        return entry

    async def confirm(self, checklist: Checklist, item: ChecklistItem, note: str) -> ItemProgress:
        return confirm(self.progress_now, checklist, item, note)

    async def export(self, checklist: Checklist) -> Path:
        self.exported[checklist.name] = export_markdown(self.progress_now, [checklist], exported=WALKED)
        return EXPORTS / f"local-{checklist.name}.md"
