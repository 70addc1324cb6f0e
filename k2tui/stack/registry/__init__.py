"""k2tui's own Confluent-compatible Schema Registry, and the client the pipeline uses."""
