"""Compaction and expiry beside appending consumers: every row exactly once, offsets carried forward."""

import contextlib
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from k2tui.consume.writer import LakeWriter, committed_offsets
from k2tui.lake import maintenance
from k2tui.lake.catalog import open_catalog
from k2tui.lake.maintenance import (
    COMPACTION_ID,
    CompactionError,
    MaintenancePolicy,
    MaintenanceSchedule,
    compact,
    expire_snapshots,
)
from k2tui.lake.table import (
    TABLE_IDENTIFIER,
    TRADES_V2_PARTITIONING,
    TRADES_V2_PROPERTIES,
    TRADES_V2_SCHEMA,
    TRADES_V2_SORT_ORDER,
)
from k2tui.model.samples import START_US, sample_trades
from k2tui.model.trade import TradeV2
from k2tui.stack.supervisor import LocalStack
from tests.integration.stack_fixture import k2tui_env

GROUP = "k2-iceberg-writer-crypto-v2"
TOPIC = "market.crypto.trades.binance"
SAMPLE_DAY = datetime.fromtimestamp(START_US / 1e6, UTC).date()
LATER = datetime.now(UTC) + timedelta(hours=1)  # every snapshot of a test is older than this


@pytest.fixture
def table(stack: LocalStack) -> Iterator[Table]:
    catalog = open_catalog(stack.layout)
    name = f"market_data.maintenance_{uuid.uuid4().hex[:8]}"
    created = catalog.create_table(
        name,
        TRADES_V2_SCHEMA,
        partition_spec=TRADES_V2_PARTITIONING,
        sort_order=TRADES_V2_SORT_ORDER,
        properties=TRADES_V2_PROPERTIES,
    )
    yield created
    with contextlib.suppress(NoSuchTableError):
        catalog.drop_table(name)


def _append_batches(writer: LakeWriter, trades: list[TradeV2], size: int, first: int = 0) -> None:
    """One append per `size` trades, each recording partition 0's next offset as a consumer would."""
    for start in range(0, len(trades), size):
        batch = trades[start : start + size]
        writer.append(batch, {(TOPIC, 0): first + start + len(batch)})


def _message_ids(table: Table) -> list[str]:
    return table.refresh().scan(selected_fields=("message_id",)).to_arrow()["message_id"].to_pylist()


def _live_files(table: Table) -> set[str]:
    return {task.file.file_path for task in table.refresh().scan().plan_files()}


def test_compaction_rewrites_small_files_and_keeps_every_row_and_the_offsets(table: Table) -> None:
    trades = list(sample_trades(600, seed=21))
    writer = LakeWriter(table, GROUP)
    _append_batches(writer, trades, 50)
    small = _live_files(table)

    report = compact(table, min_files=4)

    assert len(small) == 24 and report.before.data_files == 24  # 12 appends x 2 exchanges
    assert report.after.data_files == 2 and [p.files_after for p in report.partitions] == [1, 1]
    assert {p.partition for p in report.partitions} == {
        f"timestamp_day={SAMPLE_DAY}/exchange={e}" for e in ("BINANCE", "KRAKEN")
    }
    assert report.rows == 600 and report.before.records == report.after.records == 600
    ids = _message_ids(table)
    assert len(ids) == 600 and set(ids) == {t.message_id for t in trades}
    assert not small & _live_files(table)
    assert writer.offsets() == {(TOPIC, 0): 600}
    assert COMPACTION_ID in table.current_snapshot().summary.additional_properties
    times = table.scan(row_filter="exchange == 'BINANCE'").to_arrow()["timestamp"].to_pylist()
    assert times == sorted(times)  # the one rewritten file is in the table's sort order
    # The consumer's next append builds on the compaction snapshot and keeps the offsets moving.
    writer.append(list(sample_trades(5, seed=22)), {(TOPIC, 0): 605})
    assert writer.offsets() == {(TOPIC, 0): 605} and len(_message_ids(table)) == 605


def test_compaction_leaves_partitions_below_the_threshold_and_other_days_alone(table: Table) -> None:
    trades = list(sample_trades(400, seed=23))
    next_day = [msgspec.structs.replace(t, timestamp=t.timestamp + 86_400_000_000) for t in trades[200:]]
    writer = LakeWriter(table, GROUP)
    _append_batches(writer, trades[:200] + next_day, 50)
    files = _live_files(table)

    assert compact(table, min_files=5).partitions == ()  # 4 small files per partition
    report = compact(table, min_files=4, day=SAMPLE_DAY + timedelta(days=1))

    assert {p.partition.split("/")[0] for p in report.partitions} == {
        f"timestamp_day={SAMPLE_DAY + timedelta(days=1)}"
    }
    assert report.after.data_files == 8 + 2 and len(files - _live_files(table)) == 8
    assert len(_message_ids(table)) == 400 and writer.offsets() == {(TOPIC, 0): 400}


def test_expiry_keeps_the_newest_snapshots_and_the_offsets_and_deletes_unreferenced_files(
    table: Table,
) -> None:
    trades = list(sample_trades(300, seed=24))
    writer = LakeWriter(table, GROUP)
    _append_batches(writer, trades, 50)
    small = _live_files(table)
    compact(table, min_files=2)
    snapshots = len(table.refresh().snapshots())

    young = expire_snapshots(table, older_than=timedelta(0), retain_last=1)
    assert young.expired == 0 and young.after.snapshots == snapshots  # all within the outcome window

    report = expire_snapshots(table, older_than=timedelta(minutes=10), retain_last=1, now=LATER)

    assert report.before.snapshots == snapshots == 7 and report.after.snapshots == 1
    assert report.expired == 6 and report.manifest_lists_deleted == 6 and report.manifests_deleted > 0
    assert report.data_files_deleted == len(small) == 12
    assert not any(table.io.new_input(path).exists() for path in small)
    assert writer.offsets() == {(TOPIC, 0): 300}
    ids = _message_ids(table)
    assert len(ids) == 300 and set(ids) == {t.message_id for t in trades}
    writer.append(list(sample_trades(5, seed=25)), {(TOPIC, 0): 305})
    assert writer.offsets() == {(TOPIC, 0): 305} and len(_message_ids(table)) == 305


def test_an_append_landing_mid_compaction_is_kept_and_its_offsets_win(
    table: Table, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    trades = list(sample_trades(330, seed=26))
    writer = LakeWriter(table, GROUP)
    _append_batches(writer, trades[:300], 50)
    consumer = LakeWriter(open_catalog(stack.layout).load_table(table.name()), GROUP)  # another process
    rewrite = maintenance._rewrite
    landed = []

    def rewrite_then_append(*args: object) -> object:
        if not landed:
            landed.append(consumer.append(trades[300:], {(TOPIC, 0): 330, (TOPIC, 1): 7}))
        return rewrite(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(maintenance, "_rewrite", rewrite_then_append)
    report = compact(table, min_files=2)

    assert landed and report.after.records == 330 and report.before.records == 300
    assert report.after.snapshots == report.before.snapshots + 2  # the append, then the compaction on it
    assert committed_offsets(table.refresh(), GROUP) == {(TOPIC, 0): 330, (TOPIC, 1): 7}
    ids = _message_ids(table)
    assert len(ids) == 330 and set(ids) == {t.message_id for t in trades}


def test_a_compaction_beaten_by_another_changes_nothing(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append_batches(LakeWriter(table, GROUP), list(sample_trades(200, seed=27)), 50)
    rewrite = maintenance._rewrite
    written: list[str] = []  # by the compaction that loses
    other: list[object] = []

    def rewrite_while_another_compacts(*args: object) -> list:  # type: ignore[type-arg]
        if not other:
            other.append(None)
            other.append(compact(table, min_files=2))  # commits first, swapping the same files
            del written[:]  # its own rewrites, done inside this call
        files = rewrite(*args)  # type: ignore[arg-type]
        written.extend(f.file_path for f in files)
        return files

    monkeypatch.setattr(maintenance, "_rewrite", rewrite_while_another_compacts)
    with pytest.raises(CompactionError, match="changed nothing"):
        compact(table, min_files=2)

    live = _live_files(table)
    assert len(live) == 2 and len(written) == 2 and not live & set(written)
    assert not any(table.io.new_input(path).exists() for path in written)
    assert len(_message_ids(table)) == 200


def test_a_stopped_schedule_abandons_its_compaction_before_committing(table: Table) -> None:
    _append_batches(LakeWriter(table, GROUP), list(sample_trades(200, seed=31)), 50)
    files = _live_files(table)
    policy = MaintenancePolicy(
        expire_every=1, compact_every=1, older_than=timedelta(minutes=10), retain_last=1, min_files=2
    )
    schedule = MaintenanceSchedule(policy, now=0)
    schedule.stop()  # as a consumer does on SIGTERM

    run = schedule.run_due(table, now=1)

    assert run is not None and run.compaction is None and run.expiry is None
    assert run.errors == ["compaction: compaction stopped before committing; nothing changed"]
    assert _live_files(table) == files and len(table.refresh().snapshots()) == 4


def test_compaction_racing_a_consumer_thread_keeps_every_row_once_and_the_newest_offsets(
    table: Table, stack: LocalStack
) -> None:
    trades = list(sample_trades(1000, seed=28))
    _append_batches(LakeWriter(table, GROUP), trades[:400], 40)
    consumer = LakeWriter(open_catalog(stack.layout).load_table(table.name()), GROUP)
    gate = threading.Lock()  # what the consumer holds around its appends (MaintenanceSchedule's gate)
    appended = 400

    def consume() -> None:
        nonlocal appended
        while appended < len(trades):
            with gate:
                batch = trades[appended : appended + 40]
                consumer.append(batch, {(TOPIC, 0): appended + len(batch)})
                appended += len(batch)

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        report = compact(table, min_files=4, commit_gate=gate)
    finally:
        thread.join()

    assert report.partitions and appended == 1000
    assert committed_offsets(table.refresh(), GROUP) == {(TOPIC, 0): 1000}
    ids = _message_ids(table)
    assert len(ids) == 1000 and set(ids) == {t.message_id for t in trades}


def test_the_schedule_runs_each_job_when_due(table: Table) -> None:
    _append_batches(LakeWriter(table, GROUP), list(sample_trades(120, seed=29)), 20)
    policy = MaintenancePolicy(
        expire_every=60, compact_every=45, older_than=timedelta(minutes=10), retain_last=1, min_files=2
    )
    schedule = MaintenanceSchedule(policy, now=0)

    assert schedule.run_due(table, now=10) is None and not schedule.due(now=44)
    first = schedule.run_due(table, now=45)
    assert first is not None and first.compaction is not None and first.expiry is None
    assert first.compaction.after.data_files == 2 and not first.errors
    second = schedule.run_due(table, now=60)
    assert second is not None and second.compaction is None and second.expiry is not None
    assert second.expiry.expired == 0  # every snapshot is younger than ten minutes
    assert LakeWriter(table, GROUP).offsets() == {(TOPIC, 0): 120}


def _k2tui(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k2tui", "lake", *args],
        env=k2tui_env({"COLUMNS": "200", **env}),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_lake_verbs_report_what_they_did(stack: LocalStack, stack_env: dict[str, str]) -> None:
    trades_table = open_catalog(stack.layout).load_table(TABLE_IDENTIFIER)
    writer = LakeWriter(trades_table, "lake-cli-test")
    day = date(2031, 1, 2)  # a day no other test writes to
    shift = int((datetime(2031, 1, 2, tzinfo=UTC).timestamp() * 1e6) - START_US)
    trades = [msgspec.structs.replace(t, timestamp=t.timestamp + shift) for t in sample_trades(90, seed=30)]
    _append_batches(writer, trades, 30)

    stats = _k2tui(stack_env, "stats")
    assert stats.returncode == 0, stats.stderr
    assert "market_data.trades_v2" in stats.stdout and "snapshots" in stats.stdout

    compacted = _k2tui(stack_env, "compact", "--min-files", "3", "--partition", str(day))
    assert compacted.returncode == 0, compacted.stderr
    assert f"timestamp_day={day}/exchange=BINANCE" in compacted.stdout
    assert "Rewrote 6 small files into 2 (90 rows, every one kept)" in compacted.stdout

    expired = _k2tui(stack_env, "expire", "--older-than", "30s", "--retain-last", "100000")
    assert expired.returncode == 0, expired.stderr
    assert "(the one-minute floor)" in expired.stdout and "Expired 0 snapshots" in expired.stdout
    assert writer.offsets() == {(TOPIC, 0): 90}

    bad = _k2tui(stack_env, "expire", "--older-than", "soon")
    assert bad.returncode == 2 and "--older-than" in bad.stderr and "90s, 15m, 2h or 7d" in bad.stderr
