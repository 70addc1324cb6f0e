"""Message ids as 128-bit keys: read exactly from UUID text, found exactly, forgotten oldest first."""

import uuid

import numpy as np
import pyarrow as pa
import pytest

from k2tui.consume.recent import IdKeys, IdSet, first_occurrences, uuid_keys

pytestmark = pytest.mark.unit

ALL_ONES = 2**64 - 1


def _as_ints(keys: IdKeys) -> list[int]:
    return [(int(high) << 64) | int(low) for high, low in zip(keys.high, keys.low, strict=True)]


def _keys(values: list[int]) -> IdKeys:
    return IdKeys(
        np.array([v >> 64 for v in values], np.uint64), np.array([v & ALL_ONES for v in values], np.uint64)
    )


def test_a_uuid_in_either_case_is_its_128_bit_value() -> None:
    ids = [uuid.uuid4() for _ in range(500)] + [uuid.UUID(int=0), uuid.UUID(int=2**128 - 2)]
    text = [str(i) for i in ids]
    text[7] = text[7].upper()
    assert _as_ints(uuid_keys(pa.array(text))) == [i.int for i in ids]


def test_text_that_is_not_36_characters_or_null_gets_the_all_ones_key() -> None:
    good = str(uuid.uuid4())
    column = pa.chunked_array([pa.array(["short", None]), pa.array([good, good + "x"])])
    assert _as_ints(uuid_keys(column)) == [2**128 - 1, 2**128 - 1, uuid.UUID(good).int, 2**128 - 1]


def test_a_slice_of_a_column_is_read_from_its_own_rows() -> None:
    ids = [str(uuid.uuid4()) for _ in range(10)]
    assert _as_ints(uuid_keys(pa.array(ids).slice(3, 4))) == [uuid.UUID(i).int for i in ids[3:7]]


def test_only_the_first_of_equal_keys_is_first() -> None:
    assert first_occurrences(_keys([5, 3, 5, 9, 3, 5])).tolist() == [True, True, False, True, False, False]


def test_ids_sharing_their_high_half_are_told_apart() -> None:
    held = IdSet()
    held.add(_keys([(7 << 64) | 1, (7 << 64) | 3, (7 << 64) | 5, (8 << 64) | 1]))
    asked = [(7 << 64) | 3, (7 << 64) | 4, (8 << 64) | 1, (8 << 64) | 2, 1]
    assert held.contains(_keys(asked)).tolist() == [True, False, True, False, False]


def test_a_set_with_a_capacity_keeps_the_newest_and_forgets_the_oldest() -> None:
    recent = IdSet(capacity=1000)
    batches = [list(range(start, start + 100)) for start in range(0, 5000, 100)]
    for batch in batches:
        recent.add(_keys(batch))
    newest = [v for batch in batches[-10:] for v in batch]
    assert recent.contains(_keys(newest)).all()
    assert not recent.contains(_keys(list(range(3000)))).any()
    assert 1000 <= len(recent) <= 1000 + 1000 // IdSet.SMALL_SEGMENTS + 100


def test_a_set_without_a_capacity_keeps_everything_and_passes_it_on() -> None:
    batch = IdSet()
    for start in range(0, 2000, 100):  # more segments than are kept apart
        batch.add(_keys(list(range(start, start + 100))))
    recent = IdSet(capacity=10_000)
    recent.update(batch)
    assert len(recent) == 2000 and recent.contains(_keys(list(range(2000)))).all()
    assert not recent.contains(_keys([2000, -1 & ALL_ONES])).any()


def test_lookups_in_any_order_agree_with_a_plain_set() -> None:
    rng = np.random.default_rng(5)
    # Few distinct high halves, so many held ids share one; asked in random order, past both ends too.
    highs, lows = rng.integers(1, 40, 3000), rng.integers(0, 50, 3000)
    values = [(int(h) << 64) | int(lo) for h, lo in zip(highs, lows, strict=True)]
    held_values = set(values[:1500])
    held = IdSet(capacity=100_000)
    for start in range(0, 1500, 150):
        chunk = sorted(set(values[start : start + 150]) - set(values[:start]))
        held.add(_keys(chunk))
    asked = [*values[1000:], 0, ALL_ONES << 64 | ALL_ONES]
    assert held.contains(_keys(asked)).tolist() == [v in held_values for v in asked]
