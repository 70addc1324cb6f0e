"""The data files of the trades table, planned from cached manifests, and their rows read through a cache.

pyiceberg plans a scan by reading every manifest of the snapshot again: about 2 ms per manifest, so
200 ms on a table of 100 appends, paid by every query. Manifests and data files are immutable, so this
module reads each manifest once, keeps its live data files with their column bounds, and on a new
snapshot reads only the manifests it has not seen. Data files it reads (whole, or a few columns) are
kept in a byte-bounded LRU for the same reason: the newest files are what every latest-N query reads.

A snapshot with delete files (not written by k2tui, which only appends and rewrites) is planned by
pyiceberg itself, and the deletes are applied by its reader; the cache key includes them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, TypeVar

import pyarrow as pa
from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFileContent, ManifestContent, ManifestFile
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.metadata import TableMetadata

from k2tui.lake.lru import ByteLru

BOUND_COLUMNS = (
    "symbol",
    "exchange",
    "timestamp",
    "ingestion_timestamp",
    "price",
    "quantity",
    "sequence_number",
)
TIME_COLUMNS = ("timestamp", "ingestion_timestamp")
READ_THREADS = 4
T = TypeVar("T")


@dataclass(frozen=True)
class DataFileInfo:
    """One live data file: what to read, how many rows, and its decoded column bounds by column name."""

    task: FileScanTask
    records: int
    lower: dict[str, Any]
    upper: dict[str, Any]
    key: tuple[str, frozenset[str]] = field(compare=False)
    """The file and its delete files: rows read under this key never change."""

    @property
    def path(self) -> str:
        return self.task.file.file_path


@dataclass(frozen=True)
class TableState:
    """A table state fixed for the length of one query, so a concurrent commit cannot tear it."""

    metadata: TableMetadata
    io: Any
    snapshot_id: int | None
    files: list[DataFileInfo]


class TableFiles:
    """Plans the files of a table's current snapshot and reads their rows, both cached."""

    def __init__(self, cache_bytes: int) -> None:
        self._entries: dict[str, list[DataFileInfo]] = {}
        self._last: TableState | None = None
        self._lock = threading.Lock()
        self.cache: ByteLru[Any, pa.Table] = ByteLru(cache_bytes, attrgetter("nbytes"))
        self._pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="k2-lake-read")

    def state(self, table: Table) -> TableState:
        metadata, io = table.metadata, table.io
        current = metadata.current_snapshot()
        if current is None:
            return TableState(metadata, io, None, [])
        last = self._last
        if last is not None and last.snapshot_id == current.snapshot_id:
            return TableState(metadata, io, current.snapshot_id, last.files)
        manifests = current.manifests(io)
        schema = metadata.schema()
        if any(m.content != ManifestContent.DATA for m in manifests):
            files = [_info(task, schema) for task in table.scan(snapshot_id=current.snapshot_id).plan_files()]
            return TableState(metadata, io, current.snapshot_id, files)
        with self._lock:
            missing = [m for m in manifests if m.manifest_path not in self._entries]
        for manifest, infos in zip(
            missing, self.map(lambda m: _manifest_files(m, io, schema), missing), strict=True
        ):
            with self._lock:
                self._entries[manifest.manifest_path] = infos
        with self._lock:
            live = {m.manifest_path for m in manifests}
            for path in [p for p in self._entries if p not in live]:
                del self._entries[path]
            files = [info for m in manifests for info in self._entries[m.manifest_path]]
        self._last = TableState(metadata, io, current.snapshot_id, files)
        return self._last

    def read(
        self,
        state: TableState,
        info: DataFileInfo,
        columns: tuple[str, ...] | None = None,
        *,
        row_filter: BooleanExpression | None = None,
        cached: bool = True,
    ) -> pa.Table:
        """The file's rows (all columns, or `columns`), time columns as int64 µs; unfiltered ones cached."""
        key = (info.key, columns)
        if row_filter is None and (found := self.cache.get(key)) is not None:
            return found
        schema = state.metadata.schema()
        projected = schema if columns is None else schema.select(*columns)
        scan = ArrowScan(state.metadata, state.io, projected, row_filter or AlwaysTrue())
        rows = _micros(scan.to_table([info.task]))
        if cached and row_filter is None:
            self.cache.put(key, rows)
        return rows

    def map(self, work: Callable[[T], Any], items: Iterable[T]) -> list[Any]:
        """`work` over `items` on the read threads (file reads are I/O and decompression, both GIL-free)."""
        items = list(items)
        if len(items) <= 1:
            return [work(item) for item in items]
        return list(self._pool.map(work, items))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _manifest_files(manifest: ManifestFile, io: Any, schema: Schema) -> list[DataFileInfo]:
    return [
        _info(FileScanTask(entry.data_file), schema)
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=True)
        if entry.data_file.content == DataFileContent.DATA
    ]


def _info(task: FileScanTask, schema: Schema) -> DataFileInfo:
    data = task.file
    lower: dict[str, Any] = {}
    upper: dict[str, Any] = {}
    for name in BOUND_COLUMNS:
        column = schema.find_field(name)
        if data.lower_bounds and column.field_id in data.lower_bounds:
            lower[name] = from_bytes(column.field_type, data.lower_bounds[column.field_id])
        if data.upper_bounds and column.field_id in data.upper_bounds:
            upper[name] = from_bytes(column.field_type, data.upper_bounds[column.field_id])
    deletes = frozenset(d.file_path for d in task.delete_files)
    return DataFileInfo(task, data.record_count, lower, upper, key=(data.file_path, deletes))


def _micros(rows: pa.Table) -> pa.Table:
    """Time columns as plain int64 microseconds: exact, zone-free, and what the v2 record carries."""
    for name in TIME_COLUMNS:
        if name in rows.column_names:
            index = rows.column_names.index(name)
            rows = rows.set_column(index, name, rows[name].cast(pa.int64()))
    return rows
