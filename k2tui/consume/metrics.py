"""The consumer's Prometheus metrics, with the names the seed's PromQL uses.

Each consumer owns its registry (not the process-global one), so several consumers in one process, as
in tests, never share counters.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.process_collector import ProcessCollector

WRITE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class ConsumerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes and friends
        r = self.registry
        self.consumed = Counter("k2_messages_consumed", "Messages read from Kafka", ["topic"], registry=r)
        self.written = Counter("k2_messages_written", "Records appended to Iceberg", ["topic"], registry=r)
        self.errors = Counter("k2_errors", "Errors by type", ["type"], registry=r)
        self.dead_letters = Counter(
            "k2_dlq_messages", "Messages sent to the dead-letter queue", ["reason"], registry=r
        )
        self.gaps = Counter(
            "k2_sequence_gaps", "Gaps in exchange trade ids", ["exchange", "symbol"], registry=r
        )
        self.lag = Gauge(
            "k2_consumer_lag", "Log end minus next offset to write", ["topic", "partition"], registry=r
        )
        self.write_seconds = Histogram(
            "k2_iceberg_write_duration_seconds", "Iceberg append duration", buckets=WRITE_BUCKETS, registry=r
        )
        self.breaker_state = Gauge(
            "k2_circuit_breaker_state",
            "Circuit breaker per dependency: 0 closed, 1 open, 2 half-open",
            ["dependency"],
            registry=r,
        )
        self.batch_size = Histogram(
            "k2_batch_size", "Records per Iceberg append", buckets=BATCH_BUCKETS, registry=r
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> WSGIServer:
        """Serve /metrics on a daemon thread; the server is returned for a caller that must free the port."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server
