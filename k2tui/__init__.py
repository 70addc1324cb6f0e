"""k2tui: a terminal cockpit for the K2 crypto market-data pipeline, and the pipeline itself."""

__version__ = "0.1.0"
