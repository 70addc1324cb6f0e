"""Confluent's own Python client and Avro serde, unchanged, against k2tui's registry."""

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from k2tui.model.samples import sample_trades
from k2tui.model.schema import trade_v2_schema, trade_v2_schema_text
from k2tui.model.trade import TradeV2
from k2tui.model.wire import AvroDecoder, AvroEncoder
from k2tui.stack.registry.client import RegistryClient

TOPIC = "market.crypto.trades.binance"
SUBJECT = f"{TOPIC}-value"


@pytest.fixture
def confluent(registry) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry.url})


def test_client_register_fetch_and_compatibility(confluent: SchemaRegistryClient) -> None:
    schema = Schema(trade_v2_schema_text(), "AVRO")
    schema_id = confluent.register_schema(SUBJECT, schema)
    fresh = SchemaRegistryClient({"url": confluent.config()["url"]})  # no client-side cache: asks the server
    assert fresh.register_schema(SUBJECT, schema) == schema_id
    assert confluent.get_schema(schema_id).schema_str == trade_v2_schema_text()
    latest = confluent.get_latest_version(SUBJECT)
    assert (latest.schema_id, latest.version, latest.subject) == (schema_id, 1, SUBJECT)
    assert confluent.lookup_schema(SUBJECT, schema).version == 1
    assert confluent.get_subjects() == [SUBJECT]
    assert confluent.get_versions(SUBJECT) == [1]
    assert confluent.test_compatibility(SUBJECT, schema) is True
    narrower = Schema(
        '{"type":"record","name":"TradeV2","namespace":"com.k2.marketdata","fields":'
        '[{"name":"extra","type":"string"}]}',
        "AVRO",
    )
    assert confluent.test_compatibility(SUBJECT, narrower) is False
    with pytest.raises(SchemaRegistryError) as caught:
        confluent.register_schema(SUBJECT, narrower)
    assert caught.value.http_status_code == 409
    assert confluent.set_compatibility(SUBJECT, "FULL") == {"compatibility": "FULL"}
    assert confluent.get_compatibility(SUBJECT) == "FULL"
    assert confluent.delete_subject(SUBJECT) == [1]
    assert confluent.get_subjects() == []
    with pytest.raises(SchemaRegistryError) as caught:
        confluent.get_versions(SUBJECT)
    assert caught.value.error_code == 40401


def test_confluent_serde_and_k2tui_wire_format_agree(confluent: SchemaRegistryClient, registry) -> None:
    context = SerializationContext(TOPIC, MessageField.VALUE)
    serializer = AvroSerializer(confluent, trade_v2_schema_text())
    deserializer = AvroDeserializer(confluent)
    trades = list(sample_trades(50))
    with RegistryClient(registry.url) as ours:
        schema_id = ours.register(SUBJECT, trade_v2_schema_text())
        decoder = AvroDecoder(ours)
        encoder = AvroEncoder(schema_id, trade_v2_schema())
        for trade in trades:
            theirs = serializer(trade.to_avro(), context)
            assert theirs[:5] == b"\x00" + schema_id.to_bytes(4, "big")
            assert TradeV2.from_avro(decoder.decode(theirs).datum) == trade
            mine = encoder.encode(trade.to_avro())
            assert mine == theirs
            assert TradeV2.from_avro(deserializer(mine, context)) == trade
