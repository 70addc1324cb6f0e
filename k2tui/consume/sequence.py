"""Per (exchange, symbol) tracking of the exchange's trade ids, to tell gaps from replays and resets.

Only SMALL_GAP and LARGE_GAP count as gaps. A RESET (ids jumping far backwards, as when an exchange
restarts its counter) starts the tracking afresh rather than flooding the log with out-of-order events.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

RECENT_IDS = 4096
RECENT_GAPS = 100


class SequenceKind(StrEnum):
    IN_ORDER = "in order"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out of order"
    SMALL_GAP = "small gap"
    LARGE_GAP = "large gap"
    RESET = "reset"
    FIRST = "first"


GAP_KINDS = frozenset({SequenceKind.SMALL_GAP, SequenceKind.LARGE_GAP})


@dataclass(frozen=True, slots=True)
class SequenceEvent:
    kind: SequenceKind
    exchange: str
    symbol: str
    expected: int | None
    got: int

    @property
    def size(self) -> int:
        """Trades missing in a gap (0 for every other kind)."""
        return self.got - self.expected if self.kind in GAP_KINDS and self.expected is not None else 0

    def describe(self) -> str:
        return (
            f"{self.kind.value} on {self.exchange} {self.symbol}: expected {self.expected}, got {self.got}"
            + (f" ({self.size} missing)" if self.size else "")
        )


class _Track:
    __slots__ = ("last", "recent")

    def __init__(self, first: int) -> None:
        self.last = first
        self.recent: OrderedDict[int, None] = OrderedDict({first: None})

    def remember(self, sequence: int) -> None:
        self.recent[sequence] = None
        if len(self.recent) > RECENT_IDS:
            self.recent.popitem(last=False)

    def advance(self, sequence: int) -> bool:
        """Take `sequence` if it is the next id (True); anything else is left to the caller."""
        if sequence != self.last + 1:
            return False
        self.last = sequence
        self.remember(sequence)
        return True


class SequenceTracker:
    def __init__(self, *, large_gap: int = 1000, reset_after: int = 1_000_000) -> None:
        self.large_gap = large_gap
        self.reset_after = reset_after
        self._tracks: dict[tuple[str, str], _Track] = {}
        self.gaps: dict[tuple[str, str], int] = {}
        self.recent_gaps: deque[SequenceEvent] = deque(maxlen=RECENT_GAPS)
        """The latest gaps themselves, so a report can name them (exchange, symbol, expected, got)."""

    def observe(self, exchange: str, symbol: str, sequence: int) -> SequenceEvent:
        key = (exchange, symbol)
        track = self._tracks.get(key)
        if track is None:
            self._tracks[key] = _Track(sequence)
            return SequenceEvent(SequenceKind.FIRST, exchange, symbol, None, sequence)
        expected = track.last + 1
        if track.advance(sequence):
            return SequenceEvent(SequenceKind.IN_ORDER, exchange, symbol, expected, sequence)
        if sequence in track.recent:
            return SequenceEvent(SequenceKind.DUPLICATE, exchange, symbol, expected, sequence)
        if sequence < expected:
            if track.last - sequence <= self.reset_after:
                track.remember(sequence)
                return SequenceEvent(SequenceKind.OUT_OF_ORDER, exchange, symbol, expected, sequence)
            self._tracks[key] = _Track(sequence)
            return SequenceEvent(SequenceKind.RESET, exchange, symbol, expected, sequence)
        kind = SequenceKind.SMALL_GAP if sequence - expected <= self.large_gap else SequenceKind.LARGE_GAP
        self.gaps[key] = self.gaps.get(key, 0) + 1
        track.last = sequence
        track.remember(sequence)
        event = SequenceEvent(kind, exchange, symbol, expected, sequence)
        self.recent_gaps.append(event)
        return event

    def gaps_in(self, observed: Iterable[tuple[str, str, int]]) -> list[SequenceEvent]:
        """Observe each (exchange, symbol, sequence) in turn and return the gaps among them.

        A trade in order, nearly every one, is taken without building its event: a third of what
        `observe` costs it.
        """
        gaps: list[SequenceEvent] = []
        tracks = self._tracks
        for exchange, symbol, sequence in observed:
            track = tracks.get((exchange, symbol))
            if track is not None and track.advance(sequence):
                continue
            event = self.observe(exchange, symbol, sequence)
            if event.kind in GAP_KINDS:
                gaps.append(event)
        return gaps

    @property
    def gap_count(self) -> int:
        return sum(self.gaps.values())
