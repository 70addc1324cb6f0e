"""The Iceberg lake: catalog, the trades_v2 table, snapshots and queries."""
