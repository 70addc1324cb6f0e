import json

from k2tui.model.schema import (
    SCHEMA_FULL_NAME,
    decodes_as_v2,
    trade_v2_field_names,
    trade_v2_schema,
    trade_v2_schema_text,
)
from k2tui.model.trade import TradeV2


def test_schema_name_and_namespace_are_stable() -> None:
    document = json.loads(trade_v2_schema_text())
    assert f"{document['namespace']}.{document['name']}" == SCHEMA_FULL_NAME == "com.k2.marketdata.TradeV2"
    assert trade_v2_schema() == document


def test_schema_fields_match_the_python_type_in_order() -> None:
    assert trade_v2_field_names() == list(TradeV2.__struct_fields__)


def test_field_types_are_the_documented_choices() -> None:
    fields = {f["name"]: f["type"] for f in json.loads(trade_v2_schema_text())["fields"]}
    assert fields["price"] == {"type": "string", "java-class": "java.math.BigDecimal"}
    assert fields["quantity"] == fields["price"]
    assert fields["timestamp"] == "long"
    assert fields["sequence_number"] == ["null", "long"]
    assert fields["exchange"]["symbols"] == ["BINANCE", "KRAKEN"]
    assert fields["side"]["symbols"] == ["BUY", "SELL"]
    assert fields["vendor_data"] == {"type": "map", "values": "string"}


def test_a_writer_schema_decodes_as_v2_whatever_its_docs_but_not_with_other_fields() -> None:
    schema = trade_v2_schema()
    undocumented = {
        **schema,
        "doc": "",
        "fields": [{k: v for k, v in f.items() if k != "doc"} for f in schema["fields"]],
    }
    assert decodes_as_v2(schema) and decodes_as_v2(undocumented)
    assert not decodes_as_v2({**schema, "fields": schema["fields"][:-1]})
    assert not decodes_as_v2({**schema, "fields": [*schema["fields"][1:], schema["fields"][0]]})
