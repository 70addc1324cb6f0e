"""The Consumer pane's figures read from the consumer's real /metrics page when Prometheus is away."""

from __future__ import annotations

import asyncio

from k2tui.consume.metrics import ConsumerMetrics
from k2tui.stack.metrics import Prometheus
from k2tui.stack.ports import find_free_port
from k2tui.tui.consumer_metrics import ConsumerMetricsReader


async def test_without_prometheus_the_page_gives_totals_then_rates_over_the_last_refresh() -> None:
    metrics = ConsumerMetrics()
    metrics.written.labels("market.crypto.trades.binance").inc(1000)
    metrics.write_seconds.observe(5.0)  # one slow commit long ago: not part of the next window
    metrics.breaker_state.labels("lake").set(1)
    metrics.breaker_state.labels("registry").set(0)
    metrics.gaps.labels("binance", "BTCUSDT").inc(2)
    metrics.gaps.labels("kraken", "ETHUSD").inc(1)
    metrics.batch_size.observe(400)
    metrics.batch_size.observe(600)
    port = find_free_port()
    server = metrics.serve(port)
    nobody = Prometheus(f"http://127.0.0.1:{find_free_port()}", retries=0)
    reader = ConsumerMetricsReader(f"http://127.0.0.1:{port}/metrics", nobody)
    try:
        first = await reader.read()
        metrics.written.labels("market.crypto.trades.binance").inc(500)
        for _ in range(10):
            metrics.write_seconds.observe(0.08)
        await asyncio.sleep(0.2)
        second = await reader.read()
    finally:
        server.shutdown()
        server.server_close()
    assert first.source == f"http://127.0.0.1:{port}/metrics"
    assert first.window == "since start" and first.throughput is None
    assert first.written == 1000 and first.consumed == 0 and first.dlq_count == 0
    assert first.commit_p99_s is not None and first.commit_p99_s > 2.5
    assert first.breakers == {"lake": "open", "registry": "closed"}
    assert first.gaps_by_symbol == {"binance/BTCUSDT": 2, "kraken/ETHUSD": 1}
    assert first.sequence_gaps == 3 and first.mean_batch == 500
    assert second.window.startswith("last ") and second.window.endswith(" s")
    assert second.throughput is not None and 500 / 5 < second.throughput < 500 / 0.2
    assert second.commit_p99_s is not None and second.commit_p99_s <= 0.1
