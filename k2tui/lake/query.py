"""The query engine over ``market_data.trades_v2``: latest trades, counts, OHLCV bars, symbols, snapshots.

Data files are chosen from the Iceberg manifests (column bounds prune them; see files.py), rows are read
by pyiceberg into Arrow, and DuckDB orders, limits and aggregates. A latest-N query never scans the
table: it reads files from the most promising bound down, a few narrow columns at a time, and stops as
soon as no unread file can hold a row that beats the N-th it has; only then does it read whole rows,
and only from the files that hold the answer. Counts and the symbol list come from per-file summaries
(trades, first and last time per exchange and symbol) computed once per immutable file.

Rows come back as dicts of every v2 field with the types of :class:`k2tui.model.trade.TradeV2`, except
that the two timestamps are :class:`~k2tui.lake.values.UtcTimestamp` (aware datetimes that print as
``2026-01-13T15:30:45.123456Z``, as the seed shows them; ``.micros`` is the int64 of the record).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table
from sqlalchemy.exc import SQLAlchemyError

from k2tui.config import load_settings
from k2tui.lake.catalog import LakeUnavailableError, open_catalog
from k2tui.lake.files import DataFileInfo, TableFiles, TableState
from k2tui.lake.filters import (
    DIRECTIONS,
    ORDER_COLUMNS,
    QueryArgumentError,
    TradeFilter,
    parse_choice,
    parse_interval,
    parse_limit,
)
from k2tui.lake.snapshots import SnapshotInfo
from k2tui.lake.table import TABLE_IDENTIFIER
from k2tui.lake.values import UtcTimestamp, plain_decimal
from k2tui.model.trade import Exchange, Side
from k2tui.stack.layout import StackLayout

DEFAULT_CACHE_BYTES = 256 * 2**20
DEFAULT_REFRESH_SECONDS = 0.25
MAX_WAVE = 16
_DUCKDB = duckdb.connect()
_SUMMARY_COLUMNS = ("timestamp", "symbol", "exchange")
_BAR_COLUMNS = ("timestamp", "price", "quantity", "sequence_number")


@dataclass(frozen=True)
class Bar:
    """One OHLCV bucket; ``start`` is the bucket's first microsecond, UTC-aligned to the interval."""

    start: UtcTimestamp
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int


@dataclass(frozen=True)
class SymbolStats:
    symbol: str
    exchange: Exchange
    trades: int
    first: UtcTimestamp
    last: UtcTimestamp


@dataclass(frozen=True)
class Dependency:
    """The state of one thing the engine needs; ``detail`` says what was seen."""

    name: str
    up: bool
    detail: str
    latency_ms: float


FileSummary = dict[tuple[str, str], tuple[int, int, int]]
"""(exchange, symbol) → (trades, first µs, last µs) of one data file."""


class QueryEngine:
    """Read-only queries over the trades table, safe to call from several threads at once.

    `source` is the stack to read (its catalog, as `k2tui up` made it), a pyiceberg Table (tests), or
    None for the stack the settings describe, which is what the seed's bare ``QueryEngine()`` means.
    The table is reloaded from the catalog at most every `refresh_seconds`, so new appends show up
    within that time without every query paying a catalog round trip.
    """

    def __init__(
        self,
        source: StackLayout | Table | None = None,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        if source is None:
            source = StackLayout(load_settings())
        self._layout = source if isinstance(source, StackLayout) else None
        self._table = source if isinstance(source, Table) else None
        self._files = TableFiles(cache_bytes)
        self._refresh_seconds = refresh_seconds
        self._refreshed = time.monotonic()
        self._lock = threading.Lock()
        self._summaries: dict[Any, FileSummary] = {}

    # ---- queries -------------------------------------------------------------------------------

    def query_trades(
        self,
        symbol: str | None = None,
        exchange: str | None = None,
        start: Any = None,
        end: Any = None,
        limit: int = 100,
        order_by: str = "timestamp",
        order_direction: str = "desc",
    ) -> list[dict[str, Any]]:
        """The first `limit` trades matching the filters in the given order, each a dict of v2 fields.

        `start` (inclusive) and `end` (exclusive) take a datetime, ISO-8601 text or int microseconds.
        `order_by` is one of timestamp, ingestion_timestamp, price, quantity, sequence_number; ties
        come in storage order.
        """
        flt = TradeFilter.parse(symbol=symbol, exchange=exchange, start=start, end=end)
        limit = parse_limit(limit)
        column = parse_choice(order_by, "order_by", ORDER_COLUMNS)
        descending = parse_choice(order_direction, "order_direction", DIRECTIONS) == "desc"
        with self._reading() as state:
            files = [f for f in state.files if flt.may_match(f.lower, f.upper)]
            chosen = self._top(state, files, flt, column, descending, limit)
            return self._materialise(state, files, chosen)

    def count_trades(
        self, symbol: str | None = None, exchange: str | None = None, start: Any = None, end: Any = None
    ) -> int:
        """How many trades match, from file metadata and per-file summaries where they prove it."""
        flt = TradeFilter.parse(symbol=symbol, exchange=exchange, start=start, end=end)
        with self._reading() as state:
            files = [f for f in state.files if flt.may_match(f.lower, f.upper)]
            # A file's record count ignores delete files, so only a file without any counts whole.
            whole = [f for f in files if not f.task.delete_files and flt.matches_all(f.lower, f.upper)]
            rest = [f for f in files if f not in whole]
            total = sum(f.records for f in whole)
            straddling = []
            for info, summary in zip(rest, self._summarise(state, rest), strict=True):
                counted = _count_from_summary(summary, flt)
                if counted is None:
                    straddling.append(info)
                else:
                    total += counted
            expression = flt.expression()
            read = self._files.map(
                lambda f: self._files.read(state, f, ("timestamp",), row_filter=expression).num_rows,
                straddling,
            )
            return total + sum(read)

    def query_bars(
        self,
        symbol: str,
        interval: str,
        *,
        exchange: str | None = None,
        start: Any = None,
        end: Any = None,
        limit: int = 1000,
    ) -> list[Bar]:
        """OHLCV bars of `symbol` per `interval` (1m, 5m, 1h, 1d, ...), the newest `limit`, oldest first.

        Buckets are aligned to the epoch in UTC (a 1d bar is a UTC day); open and close are the prices
        of the first and last trade by timestamp (then exchange sequence number).
        """
        if symbol is None:
            raise QueryArgumentError("symbol", "a trading pair such as BTCUSDT (bars need one)", symbol)
        flt = TradeFilter.parse(symbol=symbol, exchange=exchange, start=start, end=end)
        width = parse_interval(interval)
        limit = parse_limit(limit)
        expression = flt.expression()
        with self._reading() as state:
            files = [f for f in state.files if flt.may_match(f.lower, f.upper)]
            parts = self._files.map(
                lambda f: self._files.read(state, f, _BAR_COLUMNS, row_filter=expression), files
            )
        rows = [p for p in parts if p.num_rows]
        if not rows:
            return []
        trades = pa.concat_tables(rows)
        result = _sql(
            "SELECT bucket, open, high, low, close, volume, trades FROM ("
            " SELECT timestamp // $width * $width AS bucket,"
            "  first(price ORDER BY timestamp, sequence_number) AS open,"
            "  max(price) AS high, min(price) AS low,"
            "  last(price ORDER BY timestamp, sequence_number) AS close,"
            "  sum(quantity) AS volume, count(*) AS trades"
            " FROM trades GROUP BY bucket ORDER BY bucket DESC LIMIT $limit"
            ") ORDER BY bucket",
            {"width": width, "limit": limit},
            trades=trades,
        )
        return [
            Bar(
                start=UtcTimestamp.from_micros(row["bucket"]),
                open=plain_decimal(row["open"]),
                high=plain_decimal(row["high"]),
                low=plain_decimal(row["low"]),
                close=plain_decimal(row["close"]),
                volume=plain_decimal(row["volume"]),
                trades=row["trades"],
            )
            for row in result.to_pylist()
        ]

    def symbols(self) -> list[SymbolStats]:
        """Every (symbol, exchange) in the table with its trade count and first and last trade time."""
        with self._reading() as state:
            merged: dict[tuple[str, str], tuple[int, int, int]] = {}
            for summary in self._summarise(state, state.files):
                for key, (trades, first, last) in summary.items():
                    old = merged.get(key)
                    merged[key] = (
                        (trades, first, last)
                        if old is None
                        else (old[0] + trades, min(old[1], first), max(old[2], last))
                    )
        return [
            SymbolStats(
                symbol,
                Exchange(exchange),
                trades,
                UtcTimestamp.from_micros(first),
                UtcTimestamp.from_micros(last),
            )
            for (exchange, symbol), (trades, first, last) in sorted(
                merged.items(), key=lambda item: (item[0][1], item[0][0])
            )
        ]

    def snapshots(self) -> list[SnapshotInfo]:
        """The table's snapshots, oldest first, with the summary properties each append recorded."""
        with self._reading() as state:
            metadata = state.metadata
        infos = []
        for snapshot in metadata.snapshots:
            summary = snapshot.summary
            properties = {} if summary is None else dict(summary.additional_properties)
            infos.append(
                SnapshotInfo(
                    snapshot_id=snapshot.snapshot_id,
                    parent_id=snapshot.parent_snapshot_id,
                    time=UtcTimestamp.from_micros(snapshot.timestamp_ms * 1000),
                    operation=None if summary is None else summary.operation.value,
                    added_records=_int_or_none(properties.get("added-records")),
                    added_data_files=_int_or_none(properties.get("added-data-files")),
                    summary=properties,
                    current=snapshot.snapshot_id == metadata.current_snapshot_id,
                )
            )
        return infos

    def health(self) -> list[Dependency]:
        """The catalog (and the table in it) and the object store, each checked now, not from cache."""
        began = time.perf_counter()
        try:
            table = self._refresh(force=True)
        except LakeUnavailableError as error:
            catalog = Dependency("catalog", False, str(error), _ms(began))
            return [catalog, Dependency("object_store", False, "not checked: no table to read", 0.0)]
        snapshot = table.metadata.current_snapshot_id
        catalog = Dependency("catalog", True, f"{TABLE_IDENTIFIER} at snapshot {snapshot}", _ms(began))
        began = time.perf_counter()
        location = table.metadata_location
        try:
            found = table.io.new_input(location).exists()
        except OSError as error:
            return [catalog, Dependency("object_store", False, f"{location}: {error}", _ms(began))]
        detail = f"{location} readable" if found else f"{location} is missing"
        return [catalog, Dependency("object_store", found, detail, _ms(began))]

    def warm(self) -> None:
        """Plan the files and read the newest, so the first queries after a start are not cold."""
        with contextlib.suppress(LakeUnavailableError):
            self.query_trades(limit=1)

    def close(self) -> None:
        self._files.close()

    # ---- the table and its files ---------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[TableState]:
        """The current table state; catalog and object store failures become LakeUnavailableError."""
        table = self._refresh()
        try:
            yield self._files.state(table)
        except OSError as error:
            raise LakeUnavailableError(f"cannot read {TABLE_IDENTIFIER}: {_first_line(error)}") from error

    def _refresh(self, *, force: bool = False) -> Table:
        with self._lock:
            try:
                if self._table is None:
                    assert self._layout is not None
                    self._table = open_catalog(self._layout).load_table(TABLE_IDENTIFIER)
                elif force or time.monotonic() - self._refreshed >= self._refresh_seconds:
                    self._table.refresh()
                else:  # fresh enough; only a real reload restarts the clock, or steady polling froze it
                    return self._table
            except NoSuchTableError as error:
                raise LakeUnavailableError(
                    f"the table {TABLE_IDENTIFIER} does not exist yet; `k2tui up` creates it"
                ) from error
            except (SQLAlchemyError, OSError) as error:
                where = self._layout.endpoints.catalog_uri if self._layout else "its catalog"
                raise LakeUnavailableError(
                    f"cannot load {TABLE_IDENTIFIER} from {where} ({_first_line(error)}); "
                    "is the stack up (`k2tui status`)?"
                ) from error
            self._refreshed = time.monotonic()
            return self._table

    def _summarise(self, state: TableState, files: list[DataFileInfo]) -> list[FileSummary]:
        """Each file's summary, computed from a narrow read the first time the file is seen."""
        missing = [f for f in files if f.key not in self._summaries]
        computed = self._files.map(
            lambda f: _summary(self._files.read(state, f, _SUMMARY_COLUMNS, cached=False)), missing
        )
        with self._lock:
            self._summaries.update({f.key: s for f, s in zip(missing, computed, strict=True)})
            live = {f.key for f in state.files}
            for key in [k for k in self._summaries if k not in live]:
                del self._summaries[key]
            return [self._summaries[f.key] for f in files]

    def _top(
        self,
        state: TableState,
        files: list[DataFileInfo],
        flt: TradeFilter,
        column: str,
        descending: bool,
        limit: int,
    ) -> pa.Table:
        """(file, pos) of the first `limit` matching rows, reading files from the most promising down."""

        def bound(info: DataFileInfo) -> Any:
            return info.upper.get(column) if descending else info.lower.get(column)

        def beaten(value: Any, nth: Any) -> bool:
            return value < nth if descending else value > nth

        # Files without bounds for the column must be read whatever; the rest best bound first.
        order = sorted(
            range(len(files)),
            key=lambda i: (bound(files[i]) is not None, _rank(bound(files[i]), descending)),
        )
        narrow = tuple(dict.fromkeys((column, *_SUMMARY_COLUMNS)))
        best = pa.schema(
            [("value", _value_type(state, column)), ("file", pa.int32()), ("pos", pa.int64())]
        ).empty_table()
        direction = "descending" if descending else "ascending"
        cursor, wave = 0, 1
        while cursor < len(order):
            if best.num_rows >= limit:
                nth, next_bound = best["value"][limit - 1].as_py(), bound(files[order[cursor]])
                if nth is not None and next_bound is not None and beaten(next_bound, nth):
                    break
            batch = order[cursor : cursor + wave]
            cursor, wave = cursor + len(batch), min(wave * 2, MAX_WAVE)

            def candidates(index: int) -> pa.Table:
                rows = self._files.read(state, files[index], narrow)
                mask = flt.mask(rows)
                positions = pc.indices_nonzero(mask if mask is not None else pc.is_valid(rows["timestamp"]))
                found = pa.table(
                    {
                        "value": rows[column].take(positions),
                        "file": pa.repeat(pa.scalar(index, pa.int32()), len(positions)),
                        "pos": positions.cast(pa.int64()),
                    }
                )
                return _first(found, limit, direction)

            pool = pa.concat_tables([best, *self._files.map(candidates, batch)])
            best = _first(pool, limit, direction)
        return best

    def _materialise(
        self, state: TableState, files: list[DataFileInfo], chosen: pa.Table
    ) -> list[dict[str, Any]]:
        """Whole rows for the chosen (file, pos), in the chosen order."""
        wanted: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for rank, (index, position) in enumerate(
            zip(chosen["file"].to_pylist(), chosen["pos"].to_pylist(), strict=True)
        ):
            wanted[index].append((rank, position))
        out: list[dict[str, Any]] = [{} for _ in range(chosen.num_rows)]

        def fetch(index: int) -> None:
            picks = wanted[index]
            rows = self._files.read(state, files[index]).take([p for _, p in picks]).to_pylist()
            for (rank, _), row in zip(picks, rows, strict=True):
                out[rank] = trade_row(row)

        self._files.map(fetch, list(wanted))
        return out


def trade_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as read (timestamps int µs) → the v2 field types; columns added later pass through."""
    return {name: _CONVERT.get(name, _same)(value) for name, value in row.items()}


def _same(value: Any) -> Any:
    return value


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "exchange": Exchange,
    "side": Side,
    "timestamp": UtcTimestamp.from_micros,
    "ingestion_timestamp": UtcTimestamp.from_micros,
    "price": plain_decimal,
    "quantity": plain_decimal,
    "vendor_data": _optional(dict),
}


def _sql(query: str, parameters: dict[str, Any], **tables: pa.Table) -> pa.Table:
    """Run `query` on a cursor of its own (DuckDB connections are not shared between threads)."""
    cursor = _DUCKDB.cursor()
    try:
        for name, table in tables.items():
            cursor.register(name, table)
        return cursor.sql(query, params=parameters).to_arrow_table()
    finally:
        cursor.close()


def _first(rows: pa.Table, limit: int, direction: str) -> pa.Table:
    """The first `limit` rows by value (nulls last), then file and position: a unique, stable order.

    Arrow's partial sort, not DuckDB: for this one step it is 7x faster (0.5 ms against 3.5 ms for the
    top 100 of 33,000 candidates), and it runs once per file read.
    """
    keys = [("value", direction), ("file", "ascending"), ("pos", "ascending")]
    return rows.take(pc.select_k_unstable(rows, k=min(limit, rows.num_rows), sort_keys=keys))


def _summary(rows: pa.Table) -> FileSummary:
    grouped = rows.group_by(["exchange", "symbol"]).aggregate(
        [("timestamp", "count"), ("timestamp", "min"), ("timestamp", "max")]
    )
    return {
        (row["exchange"], row["symbol"]): (row["timestamp_count"], row["timestamp_min"], row["timestamp_max"])
        for row in grouped.to_pylist()
    }


def _count_from_summary(summary: FileSummary, flt: TradeFilter) -> int | None:
    """Trades of the file that match, or None when a time bound cuts through a group (rows must be read)."""
    total = 0
    for (exchange, symbol), (trades, first, last) in summary.items():
        if (flt.symbol is not None and symbol != flt.symbol) or (
            flt.exchange is not None and exchange != flt.exchange.value
        ):
            continue
        start = flt.start if flt.start is not None else first
        end = flt.end if flt.end is not None else last + 1
        if first >= start and last < end:
            total += trades
        elif last >= start and first < end:
            return None
    return total


def _value_type(state: TableState, column: str) -> pa.DataType:
    if column in ("timestamp", "ingestion_timestamp"):
        return pa.int64()
    return state.metadata.schema().select(column).as_arrow().field(column).type


def _rank(value: Any, descending: bool) -> Any:
    if value is None:
        return 0
    return -value if descending else value


def _int_or_none(text: str | None) -> int | None:
    return None if text is None else int(text)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 1)
