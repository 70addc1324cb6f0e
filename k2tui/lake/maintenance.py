"""Snapshot expiry and small-file compaction that are safe beside running consumers.

Exactly once rests on two things in the table (consume/writer.py): the newest snapshot carries every
group's next Kafka offsets, and an append whose outcome is unknown looks for its commit id among the
snapshots. So:

- Compaction commits one overwrite snapshot that removes exactly the small files it read and adds
  files holding exactly their rows, with the offsets of the snapshot it builds on carried forward. The
  catalog refuses that commit if anything landed since (the branch head is asserted), so stale offsets
  are never published; compaction then rebases the same file swap onto the new head, with the new
  head's offsets. Appended files are never touched, so every row stays exactly once.
- Expiry keeps the newest snapshots and every snapshot younger than ``UNKNOWN_OUTCOME_WINDOW`` (an
  append in doubt must still find its commit id), then deletes the manifest lists, manifests and data
  files that no remaining snapshot references.

Both work on their own view of the table, so a consumer may run them from another thread.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from pyiceberg.conversions import from_bytes
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, GreaterThanOrEqual, LessThan
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFile, ManifestFile
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.sorting import SortDirection
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import NestedField

from k2tui.config import LakeSettings
from k2tui.consume.writer import carried_properties

log = logging.getLogger(__name__)

COMPACTION_ID = "k2.compaction-id"
# writer.py looks for a commit id right after an attempt whose outcome it could not tell, within the
# same append call, whose catalog and S3 requests time out in seconds (stack/services.py); the offset
# fence (writer.check_fence) backs it up. A minute covers it with a wide margin.
UNKNOWN_OUTCOME_WINDOW = timedelta(minutes=1)
# A compaction's file swap is cheap to rebase, so it gets many tries to land between appends.
REBASE_ATTEMPTS = 20
# Rows per rewritten file. One bin is in memory at a time: 100,000 rows took about 180 MiB of RSS at the
# peak (the Arrow data is 30 MiB; reading, sorting and writing copy it). A file under half of this is small.
TARGET_ROWS = 100_000


@dataclass(frozen=True)
class LakeStats:
    """What maintenance changes, from metadata only (no data file is read)."""

    snapshots: int
    data_files: int
    records: int
    data_bytes: int
    manifests: int
    metadata_bytes: int


def lake_stats(table: Table) -> LakeStats:
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None and snapshot.summary is not None else None

    def total(key: str) -> int:
        return int(summary.get(key) or 0) if summary is not None else 0

    return LakeStats(
        snapshots=len(table.metadata.snapshots),
        data_files=total("total-data-files"),
        records=total("total-records"),
        data_bytes=total("total-files-size"),
        manifests=len(snapshot.manifests(table.io)) if snapshot is not None else 0,
        metadata_bytes=len(table.io.new_input(table.metadata_location)),
    )


def _private_view(table: Table) -> Table:
    """A fresh Table object of our own, so another thread's Table (a consumer's) is never mutated."""
    return table.catalog.load_table(table.name())


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``7d`` or plain seconds, as a timedelta."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise ValueError(f"expected a duration such as 90s, 15m, 2h or 7d, got {text!r}")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return timedelta(seconds=float(match.group(1)) * unit)


# --- expiry ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryReport:
    before: LakeStats
    after: LakeStats
    expired: int
    data_files_deleted: int
    manifests_deleted: int
    manifest_lists_deleted: int
    cutoff: datetime
    seconds: float

    @property
    def files_deleted(self) -> int:
        return self.data_files_deleted + self.manifests_deleted + self.manifest_lists_deleted


def expirable(
    snapshots: Iterable[Snapshot], protected: set[int], cutoff: datetime, retain_last: int
) -> list[int]:
    """Ids of snapshots older than `cutoff`, beyond the newest `retain_last`, and not a branch or tag head."""
    newest_first = sorted(snapshots, key=lambda s: (s.sequence_number, s.timestamp_ms), reverse=True)
    cutoff_ms = int(cutoff.timestamp() * 1000)
    return [
        s.snapshot_id
        for s in newest_first[max(retain_last, 1) :]
        if s.timestamp_ms < cutoff_ms and s.snapshot_id not in protected
    ]


def expire_snapshots(
    table: Table, *, older_than: timedelta, retain_last: int, now: datetime | None = None
) -> ExpiryReport:
    """Remove old snapshots and the files only they reference; `older_than` is at least the outcome window."""
    began = time.perf_counter()
    own = _private_view(table)
    before = lake_stats(own)
    cutoff = (now or datetime.now(UTC)) - max(older_than, UNKNOWN_OUTCOME_WINDOW)
    attempt = 0
    while True:
        attempt += 1
        protected = {ref.snapshot_id for ref in own.metadata.refs.values()}
        doomed = set(expirable(own.metadata.snapshots, protected, cutoff, retain_last))
        if not doomed:
            return ExpiryReport(before, before, 0, 0, 0, 0, cutoff, time.perf_counter() - began)
        expired = [s for s in own.metadata.snapshots if s.snapshot_id in doomed]
        try:
            own.maintenance.expire_snapshots().by_ids(sorted(doomed)).commit()
            break
        except CommitFailedException:  # a commit landed in the catalog's compare-and-swap window
            if attempt == REBASE_ATTEMPTS:
                raise
            own.refresh()
    # Whatever landed meanwhile is kept too: its files are new, or live in the head that was kept.
    own.refresh()
    deleted = _delete_unreferenced(own, expired, own.metadata.snapshots)
    return ExpiryReport(before, lake_stats(own), len(expired), *deleted, cutoff, time.perf_counter() - began)


def _delete_unreferenced(
    table: Table, expired: list[Snapshot], retained: list[Snapshot]
) -> tuple[int, int, int]:
    """Delete what only `expired` referenced: (data files, manifests, manifest lists) deleted.

    One request at a time: through the stack's proxy, parallel S3 calls were twenty times slower.
    """
    io = table.io
    kept_manifests = _manifests(io, retained)
    dropped = [m for path, m in _manifests(io, expired).items() if path not in kept_manifests]
    live = _file_paths(io, kept_manifests.values(), live_only=True)
    # Entries of every status: a file a dropped manifest lists as deleted may be referenced nowhere else.
    data_files = sorted(_file_paths(io, dropped, live_only=False) - live)
    kept_lists = {s.manifest_list for s in retained}
    lists = [s.manifest_list for s in expired if s.manifest_list not in kept_lists]
    return (
        sum(_delete(io, path) for path in data_files),
        sum(_delete(io, m.manifest_path) for m in dropped),
        sum(_delete(io, path) for path in lists),
    )


def _manifests(io: FileIO, snapshots: list[Snapshot]) -> dict[str, ManifestFile]:
    return {m.manifest_path: m for s in snapshots for m in s.manifests(io)}


def _file_paths(io: FileIO, manifests: Iterable[ManifestFile], *, live_only: bool) -> set[str]:
    return {
        entry.data_file.file_path
        for manifest in manifests
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=live_only)
    }


def _delete(io: FileIO, path: str) -> int:
    """1 when `path` was deleted, 0 when it was gone already (another expiry got there first)."""
    try:
        io.delete(path)
    except FileNotFoundError:
        return 0
    return 1


# --- compaction -----------------------------------------------------------------------------------


class CompactionError(RuntimeError):
    """Compaction stopped without changing the table; the message says why."""


@dataclass(frozen=True)
class PartitionRewrite:
    partition: str
    files_before: int
    files_after: int
    rows: int


@dataclass(frozen=True)
class CompactionReport:
    before: LakeStats
    after: LakeStats
    partitions: tuple[PartitionRewrite, ...]
    snapshot_id: int | None
    attempts: int
    seconds: float

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions)


@dataclass
class _Plan:
    """The small files of one partition, in bins of at most TARGET_ROWS rows, each to become one file."""

    partition: str
    bins: list[list[DataFile]] = field(default_factory=list)


def compact(
    table: Table,
    *,
    min_files: int,
    day: date | None = None,
    target_rows: int = TARGET_ROWS,
    commit_gate: AbstractContextManager[object] | None = None,
    stop: threading.Event | None = None,
) -> CompactionReport:
    """Rewrite the small files of every partition (of `day`) that has at least `min_files` of them.

    `commit_gate` is held only around the commit: a consumer that holds the same lock around its own
    appends keeps its commits out of the swap's way (an optimistic swap can lose every race to an
    appender that commits back to back). Other writers are still handled by rebasing. Setting `stop`
    abandons the work at the next file group, before anything is committed (a consumer shutting down).
    """
    began = time.perf_counter()
    own = _private_view(table)
    before = lake_stats(own)
    plans = _plan(own, max(min_files, 2), day, target_rows)
    if not plans:
        return CompactionReport(before, before, (), None, 0, time.perf_counter() - began)
    removed: list[DataFile] = []
    added: list[DataFile] = []
    rewrites: list[PartitionRewrite] = []
    try:
        for plan in plans:
            files_after = 0
            for bin_files in plan.bins:
                if stop is not None and stop.is_set():
                    raise CompactionError("compaction stopped before committing; nothing changed")
                written = _rewrite(own, bin_files)
                removed.extend(bin_files)
                added.extend(written)
                files_after += len(written)
            rows = sum(f.record_count for b in plan.bins for f in b)
            rewrites.append(PartitionRewrite(plan.partition, sum(map(len, plan.bins)), files_after, rows))
    except BaseException:
        _discard(own.io, added)  # nothing was committed
        raise
    try:
        with commit_gate or contextlib.nullcontext():
            snapshot_id, attempts = _commit_swap(own, removed, added)
    except (CommitFailedException, ValidationException) as error:
        _discard(own.io, added)  # these two guarantee the commit did not land
        raise CompactionError(f"compaction changed nothing ({error}); run it again") from error
    return CompactionReport(
        before, lake_stats(own), tuple(rewrites), snapshot_id, attempts, time.perf_counter() - began
    )


def _plan(table: Table, min_files: int, day: date | None, target_rows: int) -> list[_Plan]:
    schema = table.schema()
    small: dict[tuple[int, str], list[DataFile]] = defaultdict(list)
    time_column = _day_partition_source(table)
    for task in table.scan(row_filter=_day_filter(time_column, day)).plan_files():
        data_file = task.file
        if task.delete_files or data_file.record_count >= target_rows // 2:
            continue
        label = table.specs()[data_file.spec_id].partition_to_path(data_file.partition, schema)
        small[(data_file.spec_id, label)].append(data_file)
    order_key = _time_order_key(time_column)
    plans = []
    for (_, label), files in sorted(small.items(), key=lambda item: item[0][1]):
        if len(files) < min_files:
            continue
        plan = _Plan(label)
        rows = target_rows
        for data_file in sorted(files, key=order_key):
            if rows + data_file.record_count > target_rows:
                plan.bins.append([])
                rows = 0
            plan.bins[-1].append(data_file)
            rows += data_file.record_count
        plan.bins = [b for b in plan.bins if len(b) > 1]  # one file alone gains nothing
        if plan.bins:
            plans.append(plan)
    return plans


def _day_partition_source(table: Table) -> NestedField:
    """The column the table is partitioned by day of (``timestamp``)."""
    for spec_field in table.spec().fields:
        if isinstance(spec_field.transform, DayTransform):
            return table.schema().find_field(spec_field.source_id)
    raise CompactionError(f"{table.name()} is not partitioned by day; compaction works per day partition")


def _day_filter(column: NestedField, day: date | None) -> BooleanExpression:
    """Rows of one UTC day, which prunes the scan to that day's partitions."""
    if day is None:
        return AlwaysTrue()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return And(
        GreaterThanOrEqual(column.name, start.isoformat()),
        LessThan(column.name, (start + timedelta(days=1)).isoformat()),
    )


def _time_order_key(column: NestedField) -> Callable[[DataFile], tuple[int, str]]:
    """Files by their earliest time, so each bin (and the file it becomes) covers a narrow time range."""

    def key(data_file: DataFile) -> tuple[int, str]:
        raw = (data_file.lower_bounds or {}).get(column.field_id)
        return (from_bytes(column.field_type, raw) if raw is not None else 0, data_file.file_path)

    return key


def _sort_keys(table: Table) -> list[tuple[str, str]]:
    """The table's sort order as Arrow sort keys (identity transforms: the only ones it uses)."""
    schema = table.schema()
    return [
        (
            schema.find_column_name(f.source_id) or "",
            "descending" if f.direction == SortDirection.DESC else "ascending",
        )
        for f in table.sort_order().fields
        if isinstance(f.transform, IdentityTransform)
    ]


def _rewrite(table: Table, files: list[DataFile]) -> list[DataFile]:
    """The rows of `files`, sorted as the table says, written as new data files (not yet committed)."""
    # Private, but the writer pyiceberg's own append/overwrite/delete use; no public call writes data
    # files without also committing them.
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    expected = sum(f.record_count for f in files)
    rows: pa.Table = ArrowScan(
        table_metadata=table.metadata,
        io=table.io,
        projected_schema=table.schema(),
        row_filter=AlwaysTrue(),
    ).to_table([FileScanTask(f) for f in files])
    if rows.num_rows != expected:
        raise CompactionError(f"read {rows.num_rows} rows from files that list {expected}; nothing changed")
    rows = rows.combine_chunks()  # one chunk per file read: sorting many chunks costs more memory
    if keys := _sort_keys(table):
        rows = rows.sort_by(keys)
    written = list(_dataframe_to_data_files(table_metadata=table.metadata, df=rows, io=table.io))
    del rows
    pa.default_memory_pool().release_unused()  # else the allocator keeps each bin's peak for good
    if sum(f.record_count for f in written) != expected:
        _discard(table.io, written)
        raise CompactionError(f"wrote a different number of rows than the {expected} read; nothing changed")
    return written


def _commit_swap(table: Table, removed: list[DataFile], added: list[DataFile]) -> tuple[int, int]:
    """Swap `removed` for `added` in one snapshot on the current head, rebasing when an append lands first.

    The commit asserts the head it was built on, so the offsets it carries are the newest. A file that
    another compaction removed meanwhile makes the swap invalid (ValidationException): nothing lands.
    """
    compaction_id = str(uuid.uuid4())
    attempt = 0
    while True:
        attempt += 1
        table.refresh()  # the swap holds on any head that still has `removed`; build on the newest
        properties = carried_properties(table) | {COMPACTION_ID: compaction_id}
        try:
            with (
                table.transaction() as change,
                change.update_snapshot(snapshot_properties=properties).overwrite() as swap,
            ):
                for data_file in removed:
                    swap.delete_data_file(data_file)
                for data_file in added:
                    swap.append_data_file(data_file)
        except CommitFailedException:
            if attempt == REBASE_ATTEMPTS:
                raise
            log.info("compaction rebasing onto a newer snapshot (attempt %d)", attempt)
            time.sleep(random.uniform(0, min(0.05 * attempt, 0.5)))  # out of step with the appenders
            continue
        snapshot = table.current_snapshot()
        assert snapshot is not None
        return snapshot.snapshot_id, attempt


def _discard(io: FileIO, files: list[DataFile]) -> None:
    for data_file in files:
        _delete(io, data_file.file_path)


# --- schedule -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaintenancePolicy:
    """How often a consumer expires and compacts, and what each keeps; 0 seconds turns a job off."""

    expire_every: float
    compact_every: float
    older_than: timedelta
    retain_last: int
    min_files: int

    @classmethod
    def from_settings(cls, lake: LakeSettings) -> MaintenancePolicy:
        return cls(
            expire_every=lake.expire_every,
            compact_every=lake.compact_every,
            older_than=timedelta(seconds=lake.snapshot_max_age),
            retain_last=lake.retain_snapshots,
            min_files=lake.compact_min_files,
        )


@dataclass
class MaintenanceRun:
    compaction: CompactionReport | None = None
    expiry: ExpiryReport | None = None
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        """One line for the consumer's event log."""
        parts = []
        if self.compaction is not None:
            c = self.compaction
            parts.append(f"compacted {c.before.data_files} files to {c.after.data_files} ({c.seconds:.1f} s)")
        if self.expiry is not None:
            e = self.expiry
            parts.append(f"expired {e.expired} snapshots, {e.files_deleted} files gone ({e.seconds:.1f} s)")
        return "; ".join(parts + self.errors) or "nothing to do"


class MaintenanceSchedule:
    """Runs the jobs whose period has passed; each first falls due one period after the schedule starts."""

    def __init__(
        self,
        policy: MaintenancePolicy,
        *,
        commit_gate: AbstractContextManager[object] | None = None,
        now: float | None = None,
    ) -> None:
        self.policy = policy
        self.commit_gate = commit_gate
        self._stopping = threading.Event()
        started = time.monotonic() if now is None else now
        self._last = {"compact": started, "expire": started}

    def stop(self) -> None:
        """Make a running compaction give up before it commits, so a consumer can shut down promptly."""
        self._stopping.set()

    def _due(self, job: str, every: float, now: float) -> bool:
        return every > 0 and now - self._last[job] >= every

    def due(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self._due("compact", self.policy.compact_every, now) or self._due(
            "expire", self.policy.expire_every, now
        )

    def run_due(self, table: Table, now: float | None = None) -> MaintenanceRun | None:
        """Compact, then expire, as due; None when neither is. Blocking: run it in a thread.

        A failure is reported in the run and tried again next period: maintenance is never worth
        stopping a consumer for.
        """
        now = time.monotonic() if now is None else now
        compact_due = self._due("compact", self.policy.compact_every, now)
        expire_due = self._due("expire", self.policy.expire_every, now)
        if not (compact_due or expire_due):
            return None
        run = MaintenanceRun()
        if compact_due:
            self._last["compact"] = now
            try:
                run.compaction = compact(
                    table, min_files=self.policy.min_files, commit_gate=self.commit_gate, stop=self._stopping
                )
            except Exception as error:  # any failure leaves the table as it was
                log.warning("scheduled compaction failed: %s", error)
                run.errors.append(f"compaction: {error}")
        if expire_due and not self._stopping.is_set():
            self._last["expire"] = now
            try:
                run.expiry = expire_snapshots(
                    table, older_than=self.policy.older_than, retain_last=self.policy.retain_last
                )
            except Exception as error:  # any failure leaves the table readable as it was
                log.warning("scheduled snapshot expiry failed: %s", error)
                run.errors.append(f"expiry: {error}")
        return run
