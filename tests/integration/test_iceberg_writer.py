"""Appends to Iceberg carry the Kafka offsets they came from, merged across groups and writers."""

import copy
import re
from collections import Counter
from decimal import Decimal

import pytest

from k2tui.consume.transaction import LakeTransaction
from k2tui.consume.writer import COMMIT_ID, LakeWriter, StaleBatchError, committed_offsets
from k2tui.lake.catalog import open_catalog
from k2tui.model.samples import sample_trades
from k2tui.model.trade import TradeV2
from k2tui.stack.supervisor import LocalStack


def test_records_round_trip_with_exact_types(table) -> None:  # type: ignore[no-untyped-def]
    trades = list(sample_trades(300, seed=9))
    LakeWriter(table, "g").append(trades, {("market.crypto.trades.binance", 0): 300})
    rows = {r["message_id"]: r for r in table.scan().to_arrow().to_pylist()}
    assert len(rows) == 300
    for trade in trades:
        row = rows[trade.message_id]
        assert row["price"] == trade.price and row["quantity"] == trade.quantity
        assert isinstance(row["price"], Decimal)
        assert int(row["timestamp"].timestamp() * 1_000_000) == pytest.approx(trade.timestamp, abs=1)
        assert dict(row["vendor_data"]) == trade.vendor_data
        assert row["sequence_number"] == trade.sequence_number and row["exchange"] == trade.exchange.value


def test_offsets_are_recorded_in_the_snapshot_and_merged_per_partition(table) -> None:  # type: ignore[no-untyped-def]
    trades: list[TradeV2] = list(sample_trades(30, seed=10))
    writer = LakeWriter(table, "k2-iceberg-writer-crypto-v2")
    first = writer.append(trades[:10], {("t", 0): 10, ("t", 1): 4})
    writer.append(trades[10:20], {("t", 1): 9})
    assert writer.offsets() == {("t", 0): 10, ("t", 1): 9}
    summary = table.current_snapshot().summary
    assert summary["added-records"] == "10" and summary["added-data-files"] is not None
    assert any(s.summary[COMMIT_ID] == first.commit_id for s in table.snapshots())


def test_every_group_keeps_its_offsets_whoever_writes_last(table) -> None:  # type: ignore[no-untyped-def]
    trades = list(sample_trades(20, seed=11))
    LakeWriter(table, "a").append(trades[:10], {("t", 0): 10})
    LakeWriter(table, "b").append(trades[10:], {("t", 0): 3})
    table.refresh()
    assert committed_offsets(table, "a") == {("t", 0): 10}
    assert committed_offsets(table, "b") == {("t", 0): 3}


def test_a_concurrent_writer_is_merged_not_overwritten(table, stack: LocalStack) -> None:  # type: ignore[no-untyped-def]
    trades = list(sample_trades(20, seed=12))
    one = LakeWriter(table, "g")
    two = LakeWriter(open_catalog(stack.layout).load_table(table.name()), "g")  # a second process's view
    one.append(trades[:10], {("t", 0): 10})
    result = two.append(trades[10:], {("t", 1): 7})  # built on a stale snapshot: conflicts, then merges
    assert result.attempts == 2
    assert two.offsets() == {("t", 0): 10, ("t", 1): 7}
    assert len(table.refresh().scan().to_arrow()) == 20


def test_a_batch_retried_after_an_outcome_in_doubt_is_not_written_twice(table) -> None:  # type: ignore[no-untyped-def]
    trades = list(sample_trades(50, seed=40))
    writer = LakeWriter(table, "g")
    first = writer.append(trades, {("t", 0): 50}, starts={("t", 0): 0})
    again = writer.append(trades, {("t", 0): 50}, starts={("t", 0): 0})  # as after a timeout that landed
    assert not first.already_written and again.already_written
    assert table.scan().to_arrow().num_rows == 50 and len(table.snapshots()) == 1


def test_a_member_that_lost_its_partition_cannot_write_over_the_new_owner(table, stack: LocalStack) -> None:  # type: ignore[no-untyped-def]
    trades = list(sample_trades(60, seed=41))
    new_owner = LakeWriter(open_catalog(stack.layout).load_table(table.name()), "g")
    new_owner.append(trades[:30], {("t", 0): 30}, starts={("t", 0): 0})
    zombie = LakeWriter(table, "g")  # its view predates the new owner's append
    with pytest.raises(StaleBatchError, match=r"t\[0\] at 30 past 10"):
        zombie.append(trades[10:40], {("t", 0): 40}, starts={("t", 0): 10})
    table.refresh()
    assert table.scan().to_arrow().num_rows == 30 and committed_offsets(table, "g") == {("t", 0): 30}


def test_a_transaction_derives_its_pending_metadata_once_per_change(table) -> None:  # type: ignore[no-untyped-def]
    transaction = LakeTransaction(table)
    before = transaction.table_metadata
    assert transaction.table_metadata is before  # read again: not applied and copied again
    transaction.set_properties({"k2.probe": "staged"})
    staged = transaction.table_metadata
    assert staged is not before and staged.properties["k2.probe"] == "staged"
    assert transaction.table_metadata is staged  # derived once for this change, not per read
    assert "k2.probe" not in table.properties
    transaction.commit_transaction()
    assert table.properties["k2.probe"] == "staged"
    assert LakeTransaction(table).table_metadata.properties["k2.probe"] == "staged"


def test_a_metadata_copy_shares_the_frozen_snapshots_and_copies_what_holds_them(table) -> None:  # type: ignore[no-untyped-def]
    writer = LakeWriter(table, "g")
    for first in (0, 5):
        writer.append(list(sample_trades(5, seed=first + 40)), {("t", 0): first + 5}, {("t", 0): first})
    metadata = table.metadata
    copied = copy.deepcopy(metadata)
    assert copied == metadata and copied.snapshots is not metadata.snapshots
    assert all(a is b for a, b in zip(copied.snapshots, metadata.snapshots, strict=True))
    assert copied.snapshot_log is not metadata.snapshot_log and copied.refs is not metadata.refs
    assert len(copied.snapshots) == 2


def test_the_catalog_parses_a_metadata_file_once_and_still_sees_other_writers(  # type: ignore[no-untyped-def]
    table, stack: LocalStack, monkeypatch
) -> None:
    from pyiceberg.catalog import sql

    parsed: list[str] = []
    parse = sql.FromInputFile.table_metadata

    def counting(input_file, encoding="utf-8"):  # type: ignore[no-untyped-def]
        parsed.append(input_file.location)
        return parse(input_file, encoding)

    monkeypatch.setattr(sql.FromInputFile, "table_metadata", staticmethod(counting))
    trades = list(sample_trades(35, seed=14))
    writer = LakeWriter(table, "g")
    for start in range(0, 20, 5):
        writer.append(trades[start : start + 5], {("t", 0): start + 5})
    assert table.refresh().metadata_location == table.metadata_location
    assert parsed == []  # every commit and refresh built on metadata this catalog wrote

    other = LakeWriter(open_catalog(stack.layout).load_table(table.name()), "g")  # another process
    other.append(trades[20:30], {("t", 0): 30})
    parsed.clear()
    table.refresh()
    assert parsed == [table.metadata_location]  # the other writer's metadata, read once
    writer.append(trades[30:], {("t", 0): 35})
    assert len(parsed) == 1
    assert writer.offsets() == {("t", 0): 35}
    assert sorted(table.scan().to_arrow()["message_id"].to_pylist()) == sorted(t.message_id for t in trades)


def test_appends_ask_the_store_nothing_about_metadata_they_wrote_and_plain_readers_see_every_row(  # type: ignore[no-untyped-def]
    table, stack: LocalStack, monkeypatch
) -> None:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.io.pyarrow import PyArrowFile, PyArrowFileIO

    from k2tui.stack.services import catalog_properties

    asked: list[str] = []
    for name in ("open", "exists", "__len__"):
        original = getattr(PyArrowFile, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            if "/metadata/" in self.location:
                asked.append(f"{_name} {self.location.rsplit('/', 1)[-1]}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(PyArrowFile, name, counting)
    trades = list(sample_trades(20, seed=15))
    writer = LakeWriter(table, "g")
    for start in range(0, 20, 5):
        writer.append(trades[start : start + 5], {("t", 0): start + 5})
    # No manifest's length after writing it, no previous manifest list, no check before a new metadata file.
    assert asked == []
    plain = SqlCatalog(stack.layout.endpoints.catalog_name, **catalog_properties(stack.layout))
    other = plain.load_table(table.name())  # what any other Iceberg reader sees
    assert type(other.io) is PyArrowFileIO
    assert sorted(other.scan().to_arrow()["message_id"].to_pylist()) == sorted(t.message_id for t in trades)
    assert len(other.current_snapshot().manifests(other.io)) == 4


def test_a_500_row_append_asks_the_object_store_for_five_puts_and_the_data_files_lengths(  # type: ignore[no-untyped-def]
    table, stack: LocalStack
) -> None:
    import httpx

    metrics = f"http://{stack.spec('object-store').metrics_target}/metrics"

    def requests() -> Counter[str]:
        counted: Counter[str] = Counter()
        for line in httpx.get(metrics, timeout=10).text.splitlines():
            if line.startswith("SeaweedFS_s3_request_total{"):
                labels, value = line.rsplit(" ", 1)
                label = dict(re.findall(r'(\w+)="([^"]*)"', labels))
                if label["bucket"] == "warehouse":
                    counted[f"{label['type']} {label['code']}"] += int(float(value))
        return counted

    trades = list(sample_trades(1000, seed=16))
    writer = LakeWriter(table, "g")
    writer.append(trades[:500], {("t", 0): 500})
    before = requests()
    writer.append(trades[500:], {("t", 0): 1000})
    asked = requests() - before
    # Two data files (a day and two exchanges), a manifest, a manifest list, the table metadata; and
    # pyiceberg's HEAD for each data file's length.
    assert asked == Counter({"PUT 200": 5, "GET 200": 2}), asked


def test_an_append_the_store_refuses_fails_at_once_and_lands_once_after(  # type: ignore[no-untyped-def]
    table, stack: LocalStack, monkeypatch
) -> None:
    from k2tui.consume import writer as writer_module
    from k2tui.stack.proxy import Mode
    from k2tui.stack.supervisor import FaultAction

    attempts: list[object] = []

    class CountedTransaction(LakeTransaction):
        def __init__(self, table) -> None:  # type: ignore[no-untyped-def]
            attempts.append(table)
            super().__init__(table)

    monkeypatch.setattr(writer_module, "LakeTransaction", CountedTransaction)
    trades = list(sample_trades(20, seed=15))
    writer = LakeWriter(table, "g")
    writer.append(trades[:10], {("t", 0): 10}, starts={("t", 0): 0})
    attempts.clear()
    stack.fault("object-store", FaultAction.PARTITION, mode=Mode.RESET)
    try:
        with pytest.raises(OSError):
            writer.append(trades[10:], {("t", 0): 20}, starts={("t", 0): 10})
    finally:
        stack.fault("object-store", FaultAction.HEAL)
    # Tried once, then left to the caller's breaker: not again here against the same outage.
    assert len(attempts) == 1
    assert writer.offsets() == {("t", 0): 10} and len(table.snapshots()) == 1
    assert not writer.append(trades[10:], {("t", 0): 20}, starts={("t", 0): 10}).already_written
    assert table.scan().to_arrow().num_rows == 20
