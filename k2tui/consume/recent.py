"""Message ids as 128-bit keys in sorted numpy arrays, for dropping duplicates a whole chunk at a time.

A message id is a UUID, so it is its 16 bytes: 200,000 ids held as a set and a queue of Python
strings took 32 MB of the consumer's peak RSS (274 MB against 307 with 20,000-row batches); as keys
they take 3.2 MB, and a chunk of 2,000 is looked up in a few numpy calls instead of 2,000 set
lookups. The key is the UUID's value, so one written in upper and in lower case is one id, as UUIDs
are (RFC 9562).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

UUID_TEXT_LENGTH = 36
_HEX_POSITIONS = np.array([i for i in range(UUID_TEXT_LENGTH) if i not in (8, 13, 18, 23)])
_NIBBLE = np.zeros(256, np.uint8)
for _digits, _first in (("0123456789", 0), ("abcdef", 10), ("ABCDEF", 10)):
    _NIBBLE[np.frombuffer(_digits.encode(), np.uint8)] = np.arange(_first, _first + len(_digits))
_BYTE_WEIGHTS = np.left_shift(np.uint64(1), np.arange(56, -8, -8, dtype=np.uint64))

Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class IdKeys:
    """Ids as the high and low 64 bits of their UUID, one per row."""

    high: npt.NDArray[np.uint64]
    low: npt.NDArray[np.uint64]

    def __len__(self) -> int:
        return len(self.high)

    def select(self, rows: Mask | npt.NDArray[np.intp]) -> IdKeys:
        return IdKeys(self.high[rows], self.low[rows])

    def sorted(self) -> IdKeys:
        return self.select(np.lexsort((self.low, self.high)))

    @staticmethod
    def joined(parts: list[IdKeys]) -> IdKeys:
        return IdKeys(np.concatenate([p.high for p in parts]), np.concatenate([p.low for p in parts]))


def uuid_keys(ids: pa.Array | pa.ChunkedArray) -> IdKeys:
    """The keys of a column of UUID text. A row that is not 36 characters gets the key of all ones;
    any other text is read as if it were hex (the consumer only looks up ids the v2 rules passed)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    ids = ids.cast(pa.large_string())
    offsets_buffer, data_buffer = ids.buffers()[1:3]
    offsets = np.frombuffer(offsets_buffer, np.int64)[ids.offset : ids.offset + len(ids) + 1]
    whole = np.diff(offsets) == UUID_TEXT_LENGTH
    if ids.null_count:
        whole &= ids.is_valid().to_numpy(zero_copy_only=False)
    high = np.full(len(ids), np.iinfo(np.uint64).max, np.uint64)
    low = high.copy()
    if whole.any():
        text = np.frombuffer(data_buffer, np.uint8)
        nibbles = _NIBBLE[text[offsets[:-1][whole, None] + _HEX_POSITIONS]].astype(np.uint64)
        octets = (nibbles[:, 0::2] << np.uint64(4)) | nibbles[:, 1::2]
        high[whole] = octets[:, :8] @ _BYTE_WEIGHTS
        low[whole] = octets[:, 8:] @ _BYTE_WEIGHTS
    return IdKeys(high, low)


def first_occurrences(keys: IdKeys) -> Mask:
    """True for each row whose key no earlier row has."""
    order = np.lexsort((keys.low, keys.high))  # stable: equal keys stay in row order
    high, low = keys.high[order], keys.low[order]
    again = np.zeros(len(keys), bool)
    again[1:] = (high[1:] == high[:-1]) & (low[1:] == low[:-1])
    first = np.ones(len(keys), bool)
    first[order[again]] = False
    return first


def _found_in(segment: IdKeys, high: npt.NDArray[np.uint64], low: npt.NDArray[np.uint64]) -> Mask:
    """Which keys (`high` sorted, as numpy's binary search walks sorted needles three times faster) a
    sorted segment holds."""
    found = np.zeros(len(high), bool)
    size = len(segment)
    if not size:
        return found
    left = np.searchsorted(segment.high, high)
    at = np.minimum(left, size - 1)
    same_high = segment.high[at] == high
    found[same_high] = segment.low[at[same_high]] == low[same_high]
    after = np.minimum(left + 1, size - 1)
    shared = same_high & ~found & (left + 1 < size) & (segment.high[after] == high)
    for row in np.flatnonzero(shared):  # ids sharing their high 64 bits: rare, looked at in full
        right = np.searchsorted(segment.high, high[row], "right")
        found[row] = bool((segment.low[left[row] : right] == low[row]).any())
    return found


class IdSet:
    """Keys in sorted segments, oldest first. With a capacity it holds at least the newest `capacity`
    ids and forgets the oldest in whole generations of about an eighth of it."""

    SMALL_SEGMENTS = 8
    """New segments are merged into one after this many, so a lookup visits a few dozen at most."""

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = capacity
        self._sealed: deque[IdKeys] = deque()
        self._growing: list[IdKeys] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def contains(self, keys: IdKeys) -> Mask:
        order = np.argsort(keys.high)
        high, low = keys.high[order], keys.low[order]
        found_sorted = np.zeros(len(keys), bool)
        for segment in (*self._sealed, *self._growing):
            found_sorted |= _found_in(segment, high, low)
        found = np.empty(len(keys), bool)
        found[order] = found_sorted
        return found

    def add(self, keys: IdKeys) -> None:
        """Remember `keys` (each once, none of them held already)."""
        if len(keys):
            self._add_sorted(keys.sorted())

    def update(self, other: IdSet) -> None:
        """Remember `other`'s keys; its segments are sorted already."""
        for segment in (*other._sealed, *other._growing):
            self._add_sorted(segment)

    def _add_sorted(self, keys: IdKeys) -> None:
        self._growing.append(keys)
        self._count += len(keys)
        if len(self._growing) > self.SMALL_SEGMENTS:
            self._growing = [IdKeys.joined(self._growing).sorted()]
        if self.capacity is None:
            return
        if sum(map(len, self._growing)) >= max(1, self.capacity // self.SMALL_SEGMENTS):
            self._sealed.append(IdKeys.joined(self._growing).sorted())
            self._growing = []
        while self._sealed and self._count - len(self._sealed[0]) >= self.capacity:
            self._count -= len(self._sealed.popleft())
