"""The parts of lake maintenance that need no table: durations, which snapshots expire, when jobs fall due."""

from datetime import UTC, datetime, timedelta

import pytest
from pyiceberg.table.snapshots import Operation, Snapshot, Summary

from k2tui.config import resolve_settings
from k2tui.lake.maintenance import MaintenancePolicy, MaintenanceSchedule, expirable, parse_duration

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604800), ("30", 30), ("1.5h", 5400)]
)
def test_durations_read_as_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-5m", "1w"])
def test_a_duration_that_is_not_one_says_the_accepted_form(text: str) -> None:
    with pytest.raises(ValueError, match="such as 90s, 15m, 2h or 7d"):
        parse_duration(text)


def _snapshot(sequence: int, minutes_ago: int) -> Snapshot:
    return Snapshot(
        snapshot_id=sequence,
        sequence_number=sequence,
        timestamp_ms=int((NOW - timedelta(minutes=minutes_ago)).timestamp() * 1000),
        manifest_list=f"s3://w/m{sequence}.avro",
        summary=Summary(Operation.APPEND),
    )


SNAPSHOTS = [_snapshot(n, minutes_ago=60 - 10 * n) for n in range(1, 6)]  # 50, 40, 30, 20, 10 minutes old


def test_expiry_takes_only_snapshots_older_than_the_cutoff() -> None:
    assert expirable(SNAPSHOTS, set(), NOW - timedelta(minutes=35), retain_last=1) == [2, 1]


def test_expiry_always_keeps_the_newest_snapshots_however_old() -> None:
    assert expirable(SNAPSHOTS, set(), NOW, retain_last=3) == [2, 1]
    assert expirable(SNAPSHOTS, set(), NOW, retain_last=0) == [4, 3, 2, 1]  # the head, at least


def test_expiry_never_takes_a_branch_or_tag_head() -> None:
    assert expirable(SNAPSHOTS, {2}, NOW, retain_last=1) == [4, 3, 1]


def test_the_policy_comes_from_the_lake_settings() -> None:
    env = {"K2_LAKE_SNAPSHOT_MAX_AGE": "3600", "K2_LAKE_COMPACT_MIN_FILES": "4"}
    policy = MaintenancePolicy.from_settings(resolve_settings(env=env).settings.lake)
    assert policy.older_than == timedelta(hours=1) and policy.min_files == 4
    assert policy.expire_every > 0 and policy.compact_every > 0 and policy.retain_last >= 1


def test_a_snapshot_age_below_the_unknown_outcome_window_is_refused() -> None:
    with pytest.raises(ValueError, match="K2_LAKE_SNAPSHOT_MAX_AGE"):
        resolve_settings(env={"K2_LAKE_SNAPSHOT_MAX_AGE": "30"})


def test_each_job_falls_due_one_period_after_the_last_and_zero_turns_it_off() -> None:
    policy = MaintenancePolicy(
        expire_every=0, compact_every=30, older_than=timedelta(hours=1), retain_last=1, min_files=2
    )
    schedule = MaintenanceSchedule(policy, now=100)
    assert not schedule.due(now=129.9) and schedule.due(now=130)
    assert not MaintenanceSchedule(MaintenancePolicy(0, 0, timedelta(hours=1), 1, 2), now=0).due(now=10**9)
