"""Appending trades to Iceberg with the Kafka offsets they came from, in the same atomic snapshot.

Iceberg is the source of truth for what was written: each append's snapshot summary carries, per
consumer group, the next offset of every partition it has written (``k2.offsets.<group>``, JSON) and a
commit id. Every append copies the offsets of all groups forward from the snapshot it builds on, so
the newest snapshot always holds them, whatever is expired. A commit whose outcome is unknown is
settled by looking for its commit id before trying again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from k2tui.consume.transaction import LakeTransaction
from k2tui.model.trade import TradeV2

OFFSETS_PREFIX = "k2.offsets."
COMMIT_ID = "k2.commit-id"
COMMIT_ATTEMPTS = 10

TopicPartition = tuple[str, int]


def offsets_key(group: str) -> str:
    return OFFSETS_PREFIX + group


def _encode_offsets(offsets: dict[TopicPartition, int]) -> str:
    return json.dumps(
        {f"{topic}/{partition}": offset for (topic, partition), offset in sorted(offsets.items())}
    )


def _decode_offsets(text: str) -> dict[TopicPartition, int]:
    decoded: dict[TopicPartition, int] = {}
    for key, offset in json.loads(text).items():
        topic, _, partition = key.rpartition("/")
        decoded[(topic, int(partition))] = int(offset)
    return decoded


def carried_properties(table: Table) -> dict[str, str]:
    """Every group's offsets as the current snapshot holds them (what the next snapshot must carry on)."""
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return {}
    summary = snapshot.summary.additional_properties
    return {key: value for key, value in summary.items() if key.startswith(OFFSETS_PREFIX)}


def committed_offsets(table: Table, group: str) -> dict[TopicPartition, int]:
    """The next offset to consume per partition, as Iceberg recorded it for `group`."""
    return _recorded(carried_properties(table), group)


def snapshot_offsets(snapshot: Snapshot, group: str) -> dict[TopicPartition, int]:
    """The offsets one snapshot recorded for `group`: what had been written when it was committed."""
    summary = snapshot.summary
    return _recorded(summary.additional_properties if summary is not None else {}, group)


def _recorded(properties: dict[str, str], group: str) -> dict[TopicPartition, int]:
    text = properties.get(offsets_key(group))
    return _decode_offsets(text) if text else {}


def arrow_trades(records: Sequence[TradeV2], schema: pa.Schema) -> pa.Table:
    """The records as Arrow columns in the table's own schema (field ids included)."""
    columns: dict[str, Any] = {
        "message_id": [r.message_id for r in records],
        "trade_id": [r.trade_id for r in records],
        "symbol": [r.symbol for r in records],
        "exchange": [r.exchange.value for r in records],
        "asset_class": [r.asset_class for r in records],
        "timestamp": [r.timestamp for r in records],
        "price": [r.price for r in records],
        "quantity": [r.quantity for r in records],
        "side": [r.side.value for r in records],
        "vendor_data": [list(r.vendor_data.items()) for r in records],
        "sequence_number": [r.sequence_number for r in records],
        "ingestion_timestamp": [r.ingestion_timestamp for r in records],
    }
    arrays = [pa.array(columns[field.name], type=field.type) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


@dataclass(frozen=True)
class AppendResult:
    snapshot_id: int
    commit_id: str
    records: int
    seconds: float
    attempts: int
    already_written: bool = False
    """The lake's offsets were past this batch already: an earlier attempt in doubt had landed."""


class StaleBatchError(RuntimeError):
    """Another writer recorded offsets past this batch's start: appending it would write rows twice."""


def check_fence(
    recorded: dict[TopicPartition, int], starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]
) -> bool:
    """True when the batch is in the lake already; raises StaleBatchError when it partly is.

    The lake's offsets move only by appends, so a batch may be appended only where the recorded offset
    of each of its partitions is at or before the batch's first offset there.
    """
    if all(recorded.get(tp, -1) >= end for tp, end in ends.items()):
        return True
    ahead = {tp: recorded[tp] for tp, start in starts.items() if recorded.get(tp, -1) > start}
    if ahead:
        described = ", ".join(f"{t}[{p}] at {o} past {starts[(t, p)]}" for (t, p), o in sorted(ahead.items()))
        raise StaleBatchError(f"the lake already holds offsets {described}")
    return False


class LakeWriter:
    def __init__(self, table: Table, group: str) -> None:
        self.table = table
        self.group = group
        self._schema = table.schema().as_arrow()

    def offsets(self) -> dict[TopicPartition, int]:
        self.table.refresh()
        return committed_offsets(self.table, self.group)

    def append(
        self,
        records: Sequence[TradeV2] | pa.Table,
        offsets: dict[TopicPartition, int],
        starts: dict[TopicPartition, int] | None = None,
    ) -> AppendResult:
        """One snapshot with `records` and this group's offsets merged over what is recorded already.

        With `starts` (each partition's first offset in the batch) the append is fenced: a batch already
        in the lake is not written again (AppendResult.already_written), and one another writer got
        past raises StaleBatchError. The consumer always passes them; that is what makes a retry after
        an outage, or a member that lost its partitions without knowing, write nothing twice.
        `records` may be a table of the v2 columns already (the model's V2_ARROW_SCHEMA).
        """
        began = time.perf_counter()
        if isinstance(records, pa.Table):
            data = records.cast(self._schema)
        else:
            data = arrow_trades(records, self._schema)
        commit_id = str(uuid.uuid4())
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            properties = carried_properties(self.table)
            recorded = _recorded(properties, self.group)
            if starts is not None and check_fence(recorded, starts, offsets):
                snapshot = self.table.current_snapshot()
                assert snapshot is not None
                seconds = time.perf_counter() - began
                return AppendResult(snapshot.snapshot_id, commit_id, data.num_rows, seconds, attempt, True)
            merged = recorded | offsets
            properties[offsets_key(self.group)] = _encode_offsets(merged)
            properties[COMMIT_ID] = commit_id
            try:
                with LakeTransaction(self.table) as transaction:
                    transaction.append(data, snapshot_properties=properties)
            except CommitFailedException:
                # Another writer committed first: build on its snapshot, keeping its offsets.
                self.table.refresh()
                continue
            except OSError:
                # The outcome is unknown (the catalog or the store failed mid-commit): did it land? If
                # not, the caller tries again later (the consumer behind its lake breaker, with backoff):
                # trying again here would only meet the same outage.
                self.table.refresh()
                if self._committed(commit_id):
                    break
                raise
            break
        else:
            raise CommitFailedException(f"gave up after {COMMIT_ATTEMPTS} concurrent commit conflicts")
        snapshot = self.table.current_snapshot()
        assert snapshot is not None
        return AppendResult(
            snapshot.snapshot_id, commit_id, data.num_rows, time.perf_counter() - began, attempt
        )

    def _committed(self, commit_id: str) -> bool:
        return any(
            s.summary is not None and s.summary.additional_properties.get(COMMIT_ID) == commit_id
            for s in self.table.snapshots()
        )
