"""The offset fence that keeps a retried or stale batch from being appended twice."""

import pytest

from k2tui.consume.writer import StaleBatchError, check_fence

A, B = ("t", 0), ("t", 1)


def test_a_batch_where_the_lake_stands_is_appended() -> None:
    assert check_fence({A: 100, B: 7}, starts={A: 100, B: 7}, ends={A: 150, B: 9}) is False


def test_a_partition_the_lake_has_never_recorded_is_appended() -> None:
    assert check_fence({}, starts={A: 0}, ends={A: 10}) is False


def test_a_gap_left_by_dead_letter_only_batches_is_no_conflict() -> None:
    # Batches of refused messages move only Kafka's commit, so the lake may stand before the start.
    assert check_fence({A: 90}, starts={A: 100}, ends={A: 150}) is False


def test_a_batch_entirely_in_the_lake_is_reported_as_written_already() -> None:
    assert check_fence({A: 150, B: 9}, starts={A: 100, B: 7}, ends={A: 150, B: 9}) is True


def test_a_batch_the_lake_holds_in_part_is_stale_and_named() -> None:
    with pytest.raises(StaleBatchError, match=r"t\[0\] at 120 past 100"):
        check_fence({A: 120, B: 7}, starts={A: 100, B: 7}, ends={A: 150, B: 9})


def test_one_partition_written_by_another_member_makes_the_whole_batch_stale() -> None:
    with pytest.raises(StaleBatchError, match=r"t\[1\] at 9 past 7"):
        check_fence({A: 100, B: 9}, starts={A: 100, B: 7}, ends={A: 150, B: 12})
