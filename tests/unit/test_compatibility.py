import json

import pytest

from k2tui.model.schema import trade_v2_schema_text
from k2tui.stack.registry.compatibility import CompatibilityLevel as Level
from k2tui.stack.registry.compatibility import incompatibilities, reader_incompatibilities


def record(*fields: dict, name: str = "Trade") -> dict:
    return {"type": "record", "name": name, "namespace": "k2", "fields": list(fields)}


ID = {"name": "id", "type": "long"}
NOTE_DEFAULT = {"name": "note", "type": "string", "default": ""}
NOTE = {"name": "note", "type": "string"}


def test_identical_schemas_are_compatible_every_way() -> None:
    v2 = json.loads(trade_v2_schema_text())
    for level in Level:
        assert incompatibilities(level, v2, [v2]) == []


def test_added_field_with_default_is_backward_compatible() -> None:
    assert incompatibilities(Level.BACKWARD, record(ID, NOTE_DEFAULT), [record(ID)]) == []


def test_added_field_without_default_is_not() -> None:
    problems = incompatibilities(Level.BACKWARD, record(ID, NOTE), [record(ID)])
    assert len(problems) == 1
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in problems[0]
    assert "'note'" in problems[0]


def test_removed_field_without_default_breaks_forward_not_backward() -> None:
    old, new = record(ID, NOTE), record(ID)
    assert incompatibilities(Level.BACKWARD, new, [old]) == []
    assert incompatibilities(Level.FORWARD, new, [old])
    assert incompatibilities(Level.FULL, new, [old])


@pytest.mark.parametrize(
    ("writer", "reader", "ok"),
    [
        ("int", "long", True),
        ("int", "double", True),
        ("long", "float", True),
        ("float", "double", True),
        ("string", "bytes", True),
        ("bytes", "string", True),
        ("long", "int", False),
        ("double", "float", False),
        ("string", "long", False),
    ],
)
def test_primitive_promotions(writer: str, reader: str, ok: bool) -> None:
    assert (reader_incompatibilities(reader, writer) == []) is ok


def test_enum_symbols() -> None:
    old = {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}
    more = {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL", "AUCTION"]}
    assert reader_incompatibilities(more, old) == []
    assert "AUCTION" in reader_incompatibilities(old, more)[0]
    assert reader_incompatibilities({**old, "default": "BUY"}, more) == []


def test_unions() -> None:
    assert reader_incompatibilities(["null", "long"], "long") == []
    assert reader_incompatibilities(["null", "long"], "int") == []
    assert reader_incompatibilities("long", ["null", "long"])
    assert reader_incompatibilities(["null", "long", "string"], ["null", "long"]) == []


def test_names_must_match_unless_aliased() -> None:
    a, b = record(ID, name="A"), record(ID, name="B")
    assert "NAME_MISMATCH" in reader_incompatibilities(b, a)[0]
    assert reader_incompatibilities({**b, "aliases": ["A"]}, a) == []


def test_field_aliases_rename() -> None:
    old = record({"name": "qty", "type": "string"})
    new = record({"name": "quantity", "type": "string", "aliases": ["qty"]})
    assert reader_incompatibilities(new, old) == []


def test_nested_types_and_recursion() -> None:
    node = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "value", "type": "long"}, {"name": "next", "type": ["null", "Node"]}],
    }
    assert reader_incompatibilities(node, node) == []
    arrays = ({"type": "array", "items": "int"}, {"type": "array", "items": "string"})
    assert "items" in reader_incompatibilities(arrays[1], arrays[0])[0]
    maps = ({"type": "map", "values": "int"}, {"type": "map", "values": "long"})
    assert reader_incompatibilities(maps[1], maps[0]) == []
    fixed = ({"type": "fixed", "name": "F", "size": 4}, {"type": "fixed", "name": "F", "size": 8})
    assert "FIXED_SIZE_MISMATCH" in reader_incompatibilities(fixed[1], fixed[0])[0]


def test_transitive_checks_every_version_plain_checks_the_latest() -> None:
    v1 = record(ID)
    v2 = record(ID, NOTE_DEFAULT)
    v3 = record(ID, NOTE)  # reads v2's data (note present) but not v1's
    assert incompatibilities(Level.BACKWARD, v3, [v1, v2]) == []
    assert incompatibilities(Level.BACKWARD_TRANSITIVE, v3, [v1, v2])


def test_none_allows_anything() -> None:
    assert incompatibilities(Level.NONE, "string", [record(ID)]) == []
