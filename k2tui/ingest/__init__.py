"""Exchange streams: WebSocket clients, v2 normalisation, the exchange simulator and the Kafka producer."""
