"""The consumer pane's figures: from Prometheus when it is up and scraping the consumer, else straight
from the consumer's /metrics page.

Prometheus gives rates and a commit p99 over a window; the page alone gives totals, and the reader
keeps its previous scrape so rates and the p99 still cover the last refresh, not the process's life.
"""

from __future__ import annotations

from dataclasses import dataclass

from k2tui.stack.metrics import (
    MetricsUnavailableError,
    Prometheus,
    Sample,
    Scrape,
    bucket_delta,
    histogram_quantile,
    rate,
    scrape,
)

BREAKER_STATES = {0: "closed", 1: "open", 2: "half-open"}
WINDOW = "1m"
"""The PromQL range of rates and of the commit p99."""
WRITE_HISTOGRAM = "k2_iceberg_write_duration_seconds"


@dataclass(frozen=True)
class ConsumerSnapshot:
    source: str
    """Where the figures came from, shown in the pane: `Prometheus <url>` or `<url>` of the page."""
    window: str
    """What the rates and the p99 cover: `last 1m`, `last 3.0 s`, or `since start`."""
    consumed: float
    """Counters the consumer has not used yet have no series; the pane shows them as 0."""
    written: float
    throughput: float | None
    """Records written to Iceberg per second over the window; None before a second reading."""
    mean_batch: float | None
    commit_p99_s: float | None
    breakers: dict[str, str]
    dlq_count: float
    gaps_by_symbol: dict[str, float]
    """`exchange/symbol` → sequence gaps seen by the consumer."""

    @property
    def sequence_gaps(self) -> float | None:
        return sum(self.gaps_by_symbol.values()) if self.gaps_by_symbol else None


def _breakers(samples: list[Sample]) -> dict[str, str]:
    return {s.labels.get("dependency", "?"): BREAKER_STATES.get(int(s.value), str(s.value)) for s in samples}


def _gaps(samples: list[Sample]) -> dict[str, float]:
    gaps: dict[str, float] = {}
    for s in samples:
        key = f"{s.labels.get('exchange', '?')}/{s.labels.get('symbol', '?')}"
        gaps[key] = gaps.get(key, 0.0) + s.value
    return gaps


class ConsumerMetricsReader:
    """Reads the consumer's figures each refresh, preferring Prometheus when it answers."""

    def __init__(self, metrics_url: str, prometheus: Prometheus | None) -> None:
        self.metrics_url = metrics_url
        self.prometheus = prometheus
        self.previous: Scrape | None = None

    async def read(self) -> ConsumerSnapshot:
        if self.prometheus is not None and await self._prometheus_sees_consumer(self.prometheus):
            try:
                return await self._from_prometheus(self.prometheus)
            except MetricsUnavailableError:
                pass
        return await self._from_page()

    @staticmethod
    async def _prometheus_sees_consumer(prometheus: Prometheus) -> bool:
        """Prometheus answers and its last scrape of the consumer worked (else its figures are stale)."""
        try:
            return await prometheus.value('up{job="consumer"}') == 1
        except MetricsUnavailableError:
            return False

    async def _from_prometheus(self, prometheus: Prometheus) -> ConsumerSnapshot:
        value = prometheus.value
        return ConsumerSnapshot(
            source=f"Prometheus {prometheus.url}",
            window=f"last {WINDOW}",
            consumed=await value("sum(k2_messages_consumed_total)") or 0.0,
            written=await value("sum(k2_messages_written_total)") or 0.0,
            throughput=await value(f"sum(rate(k2_messages_written_total[{WINDOW}]))") or 0.0,
            mean_batch=await value(
                f"sum(rate(k2_batch_size_sum[{WINDOW}])) / sum(rate(k2_batch_size_count[{WINDOW}]))"
            ),
            commit_p99_s=await value(
                f"histogram_quantile(0.99, sum by (le) (rate({WRITE_HISTOGRAM}_bucket[{WINDOW}])))"
            ),
            breakers=_breakers(await prometheus.query("k2_circuit_breaker_state")),
            dlq_count=await value("sum(k2_dlq_messages_total)") or 0.0,
            gaps_by_symbol=_gaps(await prometheus.query("k2_sequence_gaps_total")),
        )

    async def _from_page(self) -> ConsumerSnapshot:
        page = await scrape(self.metrics_url)
        before, self.previous = self.previous, page
        if before is None:
            window = "since start"
            buckets = page.values(f"{WRITE_HISTOGRAM}_bucket")
            throughput = None
        else:
            window = f"last {page.taken - before.taken:.1f} s"
            buckets = bucket_delta(before, page, WRITE_HISTOGRAM)
            throughput = rate(before, page, "k2_messages_written_total") or 0.0
        batches = page.total("k2_batch_size_count")
        return ConsumerSnapshot(
            source=self.metrics_url,
            window=window,
            consumed=page.total("k2_messages_consumed_total") or 0.0,
            written=page.total("k2_messages_written_total") or 0.0,
            throughput=throughput,
            mean_batch=(page.total("k2_batch_size_sum") or 0) / batches if batches else None,
            commit_p99_s=histogram_quantile(0.99, buckets),
            breakers=_breakers(page.values("k2_circuit_breaker_state")),
            dlq_count=page.total("k2_dlq_messages_total") or 0.0,
            gaps_by_symbol=_gaps(page.values("k2_sequence_gaps_total")),
        )
