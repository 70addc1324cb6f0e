"""Kafka → Iceberg, exactly once: the consumer, its sequence tracker, dead-letter queue and metrics."""
