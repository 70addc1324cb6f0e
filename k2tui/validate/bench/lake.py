"""`k2tui bench lake`: does partitioning by exchange pay, and what maintenance does to commit time.

On a throwaway stack, the same sample trades go into two tables, partitioned by day and by day plus
exchange, as 500-row batches each with its own snapshot (what a consumer with the seed's batch size
leaves behind). Each table is measured as loaded, then compacted and expired: files, a consumer's
append (commit) time, and two queries — the latest 100 trades of one symbol on one exchange, and the
count of one exchange's trades.
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
from k2tui.lake.catalog import ensure_trades_table, open_catalog
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

DAY_ONLY = PartitionSpec(TRADES_V2_PARTITIONING.fields[0])
SPECS = {"day": DAY_ONLY, "day+exchange": TRADES_V2_PARTITIONING}
GROUP = "bench-lake"
TOPIC = "market.crypto.trades.binance"
PROBE_APPENDS = 20
QUERY_ROUNDS = 3


def run_lake_bench(rows: int, batch: int, snapshots_per_commit: int) -> list[BenchRow]:
    with tempfile.TemporaryDirectory(prefix="k2tui-bench-") as home:
        overrides = throwaway_overrides(Path(home)) | {"consumer.service": (False, "bench")}
        stack = LocalStack(resolve_settings(overrides, env={}).settings)
        try:
            stack.up()
            catalog = open_catalog(stack.layout)
            ensure_trades_table(catalog)
            return [
                row
                for name, spec in SPECS.items()
                for row in _measure(catalog, name, spec, rows, batch, snapshots_per_commit)
            ]
        finally:
            stack.down(purge=True)


def _measure(
    catalog: Catalog, name: str, spec: PartitionSpec, rows: int, batch: int, per_commit: int
) -> list[BenchRow]:
    table = catalog.create_table(
        f"{NAMESPACE}.bench_{uuid.uuid4().hex[:8]}",
        TRADES_V2_SCHEMA,
        partition_spec=spec,
        sort_order=TRADES_V2_SORT_ORDER,
        properties=TRADES_V2_PROPERTIES,
    )
    trades = sample_trades(rows + PROBE_APPENDS * batch * 2, seed=11)
    began = time.perf_counter()
    _load(table, islice(trades, rows), batch, per_commit)
    out = [BenchRow(f"{name}: load {rows:,} rows", time.perf_counter() - began, "s")]
    out += _state(name, "as loaded", table, trades, batch)

    began = time.perf_counter()
    compacted = compact(table, min_files=2)
    out.append(BenchRow(f"{name}: compact", time.perf_counter() - began, "s"))
    assert compacted.after.records == compacted.before.records
    began = time.perf_counter()
    expired = expire_snapshots(
        table, older_than=timedelta(0), retain_last=1, now=datetime.now(UTC) + timedelta(hours=1)
    )
    out.append(
        BenchRow(
            f"{name}: expire ({expired.files_deleted:,} files deleted)", time.perf_counter() - began, "s"
        )
    )
    out += _state(name, "maintained", table, trades, batch)
    return out


def _load(table: Table, trades: Iterator[TradeV2], batch: int, per_commit: int) -> None:
    """One snapshot per `batch` trades with consumer-like offset properties; several per catalog commit."""
    schema = table.schema().as_arrow()
    offset = 0
    while chunk := list(islice(trades, batch * per_commit)):
        with table.transaction() as change:
            for start in range(0, len(chunk), batch):
                offset += len(chunk[start : start + batch])
                properties = {
                    offsets_key(GROUP): f'{{"{TOPIC}/0": {offset}}}',
                    COMMIT_ID: str(uuid.uuid4()),
                }
                change.append(
                    arrow_trades(chunk[start : start + batch], schema), snapshot_properties=properties
                )


def _state(name: str, when: str, table: Table, trades: Iterator[TradeV2], batch: int) -> list[BenchRow]:
    table.refresh()
    stats = lake_stats(table)
    writer = LakeWriter(table, GROUP)
    commits = []
    for _ in range(PROBE_APPENDS):
        result = writer.append(list(islice(trades, batch)), {(TOPIC, 0): 0})
        commits.append(result.seconds * 1000)
    prefix = f"{name} {when}:"
    return [
        BenchRow(f"{prefix} data files", stats.data_files, "files"),
        BenchRow(f"{prefix} snapshots", stats.snapshots, ""),
        BenchRow(f"{prefix} manifests", stats.manifests, ""),
        BenchRow(f"{prefix} metadata file", stats.metadata_bytes / 1024, "KiB"),
        BenchRow(
            f"{prefix} append {batch} rows, median of {PROBE_APPENDS}", statistics.median(commits), "ms"
        ),
        BenchRow(f"{prefix} latest 100 BTCUSDT on BINANCE", _best_ms(lambda: _latest(table)), "ms"),
        BenchRow(f"{prefix} count KRAKEN trades", _best_ms(lambda: _count(table)), "ms"),
    ]


def _latest(table: Table) -> int:
    rows = table.scan(row_filter="symbol == 'BTCUSDT' and exchange == 'BINANCE'").to_arrow()
    latest = rows.take(pc.select_k_unstable(rows, 100, [("timestamp", "descending")]))
    return latest.num_rows


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
