"""`k2tui bench lake`: does partitioning by exchange pay, and what maintenance does to commit time.

On a throwaway stack, the same sample trades go into two tables, partitioned by day and by day plus
exchange, as `batch`-row appends with a snapshot each (what a consumer with the seed's batch size leaves
behind), compacted and expired every `maintain_every` snapshots as a consumer's schedule would. Each
table is measured between two maintenance runs and right after one: files, a consumer's append
(commit) time, the latest 100 trades of one symbol on one exchange, and the count of one exchange's
trades. Then commit time is followed as snapshots pile up with no maintenance, and after it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.table import Table

from k2tui.config import resolve_settings
from k2tui.consume.writer import COMMIT_ID, LakeWriter, arrow_trades, offsets_key
from k2tui.lake.catalog import open_catalog
from k2tui.lake.maintenance import compact, expire_snapshots, lake_stats
from k2tui.lake.table import (
    NAMESPACE,
    TRADES_V2_PARTITIONING,
    TRADES_V2_PROPERTIES,
    TRADES_V2_SCHEMA,
    TRADES_V2_SORT_ORDER,
)
from k2tui.model.samples import sample_trades
from k2tui.model.trade import TradeV2
from k2tui.stack.layout import throwaway_overrides
from k2tui.stack.supervisor import LocalStack
from k2tui.validate.bench.result import BenchRow

SPECS = {
    "day": PartitionSpec(TRADES_V2_PARTITIONING.fields[0]),
    "day+exchange": TRADES_V2_PARTITIONING,
}
GROUP = "bench-lake"
TOPIC = "market.crypto.trades.binance"
PROBE_APPENDS = 20
QUERY_ROUNDS = 3


def run_lake_bench(
    rows: int, batch: int, per_commit: int, maintain_every: int, growth: int
) -> list[BenchRow]:
    with tempfile.TemporaryDirectory(prefix="k2tui-bench-") as home:
        overrides = throwaway_overrides(Path(home)) | {"consumer.service": (False, "bench")}
        stack = LocalStack(resolve_settings(overrides, env={}).settings)
        try:
            stack.up()
            catalog = open_catalog(stack.layout)
            catalog.create_namespace_if_not_exists(NAMESPACE)
            trades = sample_trades(2 * rows + 10 * batch * (PROBE_APPENDS + growth), seed=11)
            out: list[BenchRow] = []
            for name, spec in SPECS.items():
                table = _create(catalog, spec)
                out += _partitioning(name, table, trades, rows, batch, per_commit, maintain_every)
            return out + _commit_growth(table, trades, batch, growth)
        finally:
            stack.down(purge=True)


def _create(catalog: Catalog, spec: PartitionSpec) -> Table:
    return catalog.create_table(
        f"{NAMESPACE}.bench_{uuid.uuid4().hex[:8]}",
        TRADES_V2_SCHEMA,
        partition_spec=spec,
        sort_order=TRADES_V2_SORT_ORDER,
        properties=TRADES_V2_PROPERTIES,
    )


def _maintain(table: Table) -> tuple[float, float]:
    """Seconds to compact and to expire everything but the head (as if every snapshot were old enough)."""
    began = time.perf_counter()
    report = compact(table, min_files=2)
    assert report.after.records == report.before.records, "compaction changed the row count"
    compacted = time.perf_counter()
    later = datetime.now(UTC) + timedelta(hours=1)
    expire_snapshots(table, older_than=timedelta(0), retain_last=1, now=later)
    expired = time.perf_counter()
    table.refresh()  # maintenance works on its own view; this one's head was just expired
    return compacted - began, expired - compacted


def _partitioning(
    name: str,
    table: Table,
    trades: Iterator[TradeV2],
    rows: int,
    batch: int,
    per_commit: int,
    maintain_every: int,
) -> list[BenchRow]:
    began = time.perf_counter()
    loaded = unmaintained = 0
    while loaded < rows:
        if unmaintained >= maintain_every:
            _maintain(table)
            unmaintained = 0
        count = min(per_commit * batch, rows - loaded)
        _load(table, list(islice(trades, count)), batch, loaded)
        loaded += count
        unmaintained += -(-count // batch)
    out = [
        BenchRow(
            f"{name}: load {rows:,} rows, maintained every {maintain_every} snapshots",
            time.perf_counter() - began,
            "s",
        )
    ]
    out += _state(f"{name} (+{unmaintained} snapshots)", table, trades, batch)
    compact_s, expire_s = _maintain(table)
    out.append(BenchRow(f"{name}: compact", compact_s, "s"))
    out.append(BenchRow(f"{name}: expire", expire_s, "s"))
    return out + _state(f"{name} (maintained)", table, trades, batch)


def _load(table: Table, trades: list[TradeV2], batch: int, offset: int) -> None:
    """One snapshot per `batch` trades with a consumer's properties, all in one catalog commit."""
    schema = table.schema().as_arrow()
    with table.transaction() as change:
        for start in range(0, len(trades), batch):
            part = trades[start : start + batch]
            offset += len(part)
            properties = {offsets_key(GROUP): f'{{"{TOPIC}/0": {offset}}}', COMMIT_ID: str(uuid.uuid4())}
            change.append(arrow_trades(part, schema), snapshot_properties=properties)


def _state(label: str, table: Table, trades: Iterator[TradeV2], batch: int) -> list[BenchRow]:
    stats = lake_stats(table.refresh())
    rows = [
        BenchRow(f"{label}: data files", stats.data_files, "files"),
        BenchRow(f"{label}: snapshots", stats.snapshots, ""),
        BenchRow(f"{label}: latest 100 BTCUSDT on BINANCE", _best_ms(lambda: _latest(table)), "ms"),
        BenchRow(f"{label}: count of KRAKEN trades", _best_ms(lambda: _count(table)), "ms"),
    ]
    commits = _appends(table, trades, batch, PROBE_APPENDS)
    return [*rows, BenchRow(f"{label}: append {batch} rows (median)", statistics.median(commits), "ms")]


def _appends(table: Table, trades: Iterator[TradeV2], batch: int, count: int) -> list[float]:
    """Milliseconds of each of `count` consumer appends (LakeWriter: one catalog commit each)."""
    writer = LakeWriter(table, GROUP)
    return [writer.append(list(islice(trades, batch)), {(TOPIC, 0): 0}).seconds * 1000 for _ in range(count)]


def _commit_growth(table: Table, trades: Iterator[TradeV2], batch: int, growth: int) -> list[BenchRow]:
    """Commit time as snapshots pile up with no maintenance, then after one compaction and expiry."""
    window = max(1, min(50, growth // 4))
    commits = _appends(table, trades, batch, growth)
    stats = lake_stats(table.refresh())
    _maintain(table)
    after = _appends(table, trades, batch, window)
    return [
        BenchRow(
            f"commit growth: append, first {window} of {growth}", statistics.median(commits[:window]), "ms"
        ),
        BenchRow(
            f"commit growth: append, last {window} ({stats.snapshots} snapshots, "
            f"{stats.metadata_bytes // 1024} KiB metadata)",
            statistics.median(commits[-window:]),
            "ms",
        ),
        BenchRow(f"commit growth: append after compact + expire, {window}", statistics.median(after), "ms"),
    ]


def _latest(table: Table) -> int:
    rows = table.scan(row_filter="symbol == 'BTCUSDT' and exchange == 'BINANCE'").to_arrow()
    return rows.take(pc.select_k_unstable(rows, 100, [("timestamp", "descending")])).num_rows


def _count(table: Table) -> int:
    return table.scan(row_filter="exchange == 'KRAKEN'").count()


def _best_ms(query: Callable[[], int]) -> float:
    """The best of a few rounds: the query's own cost, not the noise of a shared machine."""
    times = []
    for _ in range(QUERY_ROUNDS):
        began = time.perf_counter()
        query()
        times.append((time.perf_counter() - began) * 1000)
    return min(times)
