"""The read-only HTTP query API over the lake: trades, counts, bars, symbols, snapshots and health."""
