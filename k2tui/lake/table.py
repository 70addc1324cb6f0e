"""The Iceberg definition of ``market_data.trades_v2``: the v2 record as columns, partitioned by day.

Timestamps are Iceberg ``timestamptz`` (microseconds, UTC): the same int64 microseconds as the Avro
record, but typed, so the table partitions by day and engines show real times. Price and quantity are
``decimal(38, 18)``: exact, and wide enough for six-digit prices and 1e-8 quantities (the v2 rules
reject anything that does not fit).
"""

from __future__ import annotations

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import (
    DecimalType,
    LongType,
    MapType,
    NestedField,
    StringType,
    TimestamptzType,
)

NAMESPACE = "market_data"
TABLE_NAME = "trades_v2"
TABLE_IDENTIFIER = f"{NAMESPACE}.{TABLE_NAME}"
DECIMAL = DecimalType(38, 18)

TRADES_V2_SCHEMA = Schema(
    NestedField(1, "message_id", StringType(), required=True),
    NestedField(2, "trade_id", StringType(), required=True),
    NestedField(3, "symbol", StringType(), required=True),
    NestedField(4, "exchange", StringType(), required=True),
    NestedField(5, "asset_class", StringType(), required=True),
    NestedField(6, "timestamp", TimestamptzType(), required=True),
    NestedField(7, "price", DECIMAL, required=True),
    NestedField(8, "quantity", DECIMAL, required=True),
    NestedField(9, "side", StringType(), required=True),
    NestedField(
        10,
        "vendor_data",
        MapType(key_id=13, key_type=StringType(), value_id=14, value_type=StringType(), value_required=True),
        required=True,
    ),
    NestedField(11, "sequence_number", LongType(), required=False),
    NestedField(12, "ingestion_timestamp", TimestamptzType(), required=True),
)

TRADES_V2_PARTITIONING = PartitionSpec(
    PartitionField(source_id=6, field_id=1000, transform=DayTransform(), name="timestamp_day"),
    PartitionField(source_id=4, field_id=1001, transform=IdentityTransform(), name="exchange"),
)

TRADES_V2_SORT_ORDER = SortOrder(SortField(source_id=6, transform=IdentityTransform()))

TRADES_V2_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    # pyiceberg would retry a conflicting commit itself, with the snapshot properties of the stale base,
    # dropping another writer's offsets. The lake writer retries instead, merging them (writer.py).
    "commit.retry.num-retries": "0",
}
