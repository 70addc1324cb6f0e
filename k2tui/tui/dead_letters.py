"""The dead-letter queue as the cockpit reads it: entries re-read only when the files changed, one
entry described as `k2tui dlq show` describes it, and replayed as `k2tui dlq replay <id>` replays it.

Nothing here imports Textual: the DLQ pane and the entry screen render what these return.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from k2tui.ingest.dlq import (
    DeadLetter,
    ReplayRecord,
    collect_dead_letters,
    describe_decoded,
    describe_payload,
    find_dead_letter,
    letter_facts,
    read_replays,
    replay_log,
)
from k2tui.ingest.replay import ReplayOutcome, ReplayStatus, replay_dead_letters

Signature = tuple[tuple[str, int, int], ...]

REPLAY_VERDICTS = {
    ReplayStatus.REPLAYED: "replayed",
    ReplayStatus.DONE_BEFORE: "already replayed",
    ReplayStatus.SKIPPED: "still fails",
    ReplayStatus.FAILED: "Kafka did not take it",
    ReplayStatus.READY: "ready",
}
"""How the entry screen names each replay outcome."""


class DlqReader:
    """The DLQ directory's entries, decoded again only when a file's size or mtime changed (the pane
    asks every second; a queue of thousands of entries is not re-read for nothing)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.reads = 0
        """How many times the files were actually read (the tests watch it)."""
        self._signature: Signature | None = None
        self._letters: list[DeadLetter] = []
        self._lock = threading.Lock()

    def signature(self) -> Signature:
        files = [*sorted(self.directory.glob("*.jsonl")), replay_log(self.directory)]
        found = []
        for path in files:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found.append((path.name, stat.st_size, stat.st_mtime_ns))
        return tuple(found)

    def letters(self) -> list[DeadLetter]:
        """Every entry, oldest first, each id once."""
        with self._lock:
            signature = self.signature()
            if signature != self._signature:
                self._letters = collect_dead_letters(self.directory)
                self._signature = signature
                self.reads += 1
            return self._letters


@dataclass(frozen=True)
class EntryView:
    """One entry as the entry screen shows it; the same facts, fields and payload as `k2tui dlq show`."""

    facts: dict[str, str]
    decoded: str | None
    """The fields that decoded, as indented JSON; None when nothing decoded."""
    payload: str
    """Indented JSON when the payload is JSON, the text when it is text, else a hex dump."""
    payload_bytes: int


@dataclass(frozen=True)
class ReplayResult:
    letter_id: str
    verdict: str
    """replayed / already replayed / still fails / Kafka did not take it."""
    detail: str


class DeadLetterDesk(Protocol):
    """Opening and replaying one entry; a method that cannot reach its source raises with the reason."""

    async def entry(self, letter_id: str) -> EntryView: ...
    async def replay(self, letter_id: str) -> ReplayResult: ...


def entry_view(letter: DeadLetter, replays: Iterable[ReplayRecord] = ()) -> EntryView:
    raw = letter.raw_bytes()
    return EntryView(letter_facts(letter, replays), describe_decoded(letter), describe_payload(raw), len(raw))


def replay_result(outcome: ReplayOutcome) -> ReplayResult:
    return ReplayResult(outcome.letter.id, REPLAY_VERDICTS[outcome.status], outcome.detail)


class LiveDeadLetterDesk:
    """The stack's DLQ directory, replayed to its Kafka through its registry."""

    def __init__(self, reader: DlqReader, *, bootstrap: str, registry_url: str, partitions: int) -> None:
        self.reader = reader
        self.bootstrap = bootstrap
        self.registry_url = registry_url
        self.partitions = partitions

    def _letter(self, letter_id: str) -> DeadLetter:
        return find_dead_letter(self.reader.letters(), letter_id, self.reader.directory)

    def _entry(self, letter_id: str) -> EntryView:
        letter = self._letter(letter_id)
        return entry_view(letter, read_replays(self.reader.directory).get(letter.id, []))

    async def entry(self, letter_id: str) -> EntryView:
        return await asyncio.to_thread(self._entry, letter_id)

    async def replay(self, letter_id: str) -> ReplayResult:
        letter = await asyncio.to_thread(self._letter, letter_id)
        outcomes = await replay_dead_letters(
            self.reader.directory,
            [letter],
            bootstrap=self.bootstrap,
            registry_url=self.registry_url,
            partitions=self.partitions,
        )
        return replay_result(outcomes[0])
