"""The consumer's sequence tracker: gaps, replays and resets per exchange and symbol."""

import pyarrow as pa

from k2tui.consume.sequence import GAP_KINDS, RECENT_IDS, SequenceKind, SequenceTracker


def _kinds(tracker: SequenceTracker, ids: list[int], symbol: str = "BTCUSDT") -> list[SequenceKind]:
    return [tracker.observe("BINANCE", symbol, i).kind for i in ids]


def test_consecutive_ids_are_in_order() -> None:
    assert _kinds(SequenceTracker(), [5, 6, 7]) == [
        SequenceKind.FIRST,
        SequenceKind.IN_ORDER,
        SequenceKind.IN_ORDER,
    ]


def test_a_repeated_id_is_a_duplicate_not_a_gap() -> None:
    tracker = SequenceTracker()
    assert _kinds(tracker, [5, 6, 6, 5])[2:] == [SequenceKind.DUPLICATE, SequenceKind.DUPLICATE]
    assert tracker.gap_count == 0


def test_a_small_jump_is_a_small_gap_with_its_size() -> None:
    tracker = SequenceTracker(large_gap=10)
    tracker.observe("BINANCE", "BTCUSDT", 100)
    event = tracker.observe("BINANCE", "BTCUSDT", 104)
    assert event.kind is SequenceKind.SMALL_GAP and event.expected == 101 and event.size == 3
    assert event.describe() == "small gap on BINANCE BTCUSDT: expected 101, got 104 (3 missing)"


def test_a_jump_past_the_threshold_is_a_large_gap() -> None:
    tracker = SequenceTracker(large_gap=10)
    assert _kinds(tracker, [1, 50]) == [SequenceKind.FIRST, SequenceKind.LARGE_GAP]
    assert tracker.gap_count == 1


def test_an_older_unseen_id_is_out_of_order_then_a_duplicate() -> None:
    tracker = SequenceTracker()
    assert _kinds(tracker, [10, 13, 11, 11]) == [
        SequenceKind.FIRST,
        SequenceKind.SMALL_GAP,
        SequenceKind.OUT_OF_ORDER,
        SequenceKind.DUPLICATE,
    ]


def test_a_far_jump_backwards_is_a_reset_and_tracking_restarts() -> None:
    tracker = SequenceTracker(reset_after=1000)
    assert _kinds(tracker, [5_000_000, 3, 4]) == [
        SequenceKind.FIRST,
        SequenceKind.RESET,
        SequenceKind.IN_ORDER,
    ]
    assert tracker.gap_count == 0


def test_symbols_and_exchanges_are_tracked_apart() -> None:
    tracker = SequenceTracker()
    tracker.observe("BINANCE", "BTCUSDT", 1)
    tracker.observe("KRAKEN", "BTCUSD", 900)
    assert tracker.observe("BINANCE", "ETHUSDT", 2).kind is SequenceKind.FIRST
    assert tracker.observe("BINANCE", "BTCUSDT", 2).kind is SequenceKind.IN_ORDER
    assert tracker.observe("KRAKEN", "BTCUSD", 905).kind is SequenceKind.SMALL_GAP
    assert tracker.gaps == {("KRAKEN", "BTCUSD"): 1}


def test_gaps_in_a_run_are_what_observing_one_by_one_finds() -> None:
    sequences = [1, 2, 3, 5, 6, 6, 4, 7, 2000, 2001, 10, 11, 3_000_000, 3_000_001, 3_000_003]
    observed = [(exchange, "BTCUSDT", s) for s in sequences for exchange in ("BINANCE", "KRAKEN")]
    one_by_one = SequenceTracker()
    expected = [event for item in observed if (event := one_by_one.observe(*item)).kind in GAP_KINDS]
    run = SequenceTracker()
    gaps = run.gaps_in(observed)
    assert gaps == expected
    assert [gap.got for gap in gaps[::2]] == [5, 2000, 3_000_000, 3_000_003]
    assert run.gaps == one_by_one.gaps
    assert run.recent_gaps == one_by_one.recent_gaps
    assert run.observe("BINANCE", "BTCUSDT", 3_000_004).kind is SequenceKind.IN_ORDER


def _columns(observed: list[tuple[str, str, int | None]]) -> list[pa.ChunkedArray]:
    return [pa.chunked_array([pa.array(list(column))]) for column in zip(*observed, strict=True)]


def test_gaps_in_columns_are_what_observing_each_symbol_in_turn_finds() -> None:
    sequences = [1, 2, 3, 5, 6, 6, 4, 7, 2000, 2001, 10, 11, 3_000_000, 3_000_001, 3_000_003]
    observed = [(exchange, "BTCUSDT", s) for s in sequences for exchange in ("BINANCE", "KRAKEN")]
    observed += [("KRAKEN", "BTCUSDT", None), ("BINANCE", "ETHUSDT", 40)]
    one_by_one = SequenceTracker()
    for key in [("BINANCE", "BTCUSDT"), ("BINANCE", "ETHUSDT"), ("KRAKEN", "BTCUSDT")]:
        for item in observed:
            if item[:2] == key and item[2] is not None:
                one_by_one.observe(*item)
    run = SequenceTracker()
    gaps = run.gaps_in_columns(*_columns(observed))
    assert gaps == list(one_by_one.recent_gaps)
    assert run.gaps == one_by_one.gaps == {("BINANCE", "BTCUSDT"): 4, ("KRAKEN", "BTCUSDT"): 4}


def test_ids_taken_in_one_step_are_remembered_as_if_taken_one_by_one() -> None:
    tracker = SequenceTracker()
    tracker.observe("BINANCE", "BTCUSDT", 0)
    assert tracker.gaps_in_columns(*_columns([("BINANCE", "BTCUSDT", s) for s in range(1, 6001)])) == []
    assert tracker.observe("BINANCE", "BTCUSDT", 6001).kind is SequenceKind.IN_ORDER
    assert tracker.observe("BINANCE", "BTCUSDT", 6001 - RECENT_IDS + 1).kind is SequenceKind.DUPLICATE
    assert tracker.observe("BINANCE", "BTCUSDT", 6001 - RECENT_IDS).kind is SequenceKind.OUT_OF_ORDER
    gaps = tracker.gaps_in_columns(*_columns([("BINANCE", "BTCUSDT", s) for s in (6002, 6003, 6005, 6006)]))
    assert [(gap.expected, gap.got) for gap in gaps] == [(6004, 6005)]
