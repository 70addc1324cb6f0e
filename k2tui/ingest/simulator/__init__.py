"""A protocol-exact exchange simulator: Binance spot trade streams and Kraken WebSocket v1/v2 trade channels.

Tests and offline demos point the real exchange clients at it instead of the exchanges, which are not
reachable here; its knobs inject the faults those clients must survive (drops, stalls, malformed messages,
gaps, duplicates, server shutdowns, connection age limits).
"""

from k2tui.ingest.simulator.server import ExchangeSimulator, run_simulator

__all__ = ["ExchangeSimulator", "run_simulator"]
