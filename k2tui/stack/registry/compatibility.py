"""Schema compatibility decided by Avro's schema resolution rules (reader vs writer), as Confluent does.

``reader_incompatibilities(reader, writer)`` lists every reason data written with `writer` could
not be read with `reader`; empty means compatible. The registry's levels combine that check:
BACKWARD means the new schema reads what the previous one wrote, FORWARD the reverse, FULL both,
and the TRANSITIVE forms apply it against every earlier version instead of the latest only.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import fastavro

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
# writer type -> reader types that can read it (Avro 1.11 specification, "Schema Resolution").
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


class CompatibilityLevel(StrEnum):
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"


def parse(schema: Any) -> tuple[Any, dict[str, Any]]:
    """fastavro's parse (full names, validation) plus the table of named types it found."""
    named: dict[str, Any] = {}
    return fastavro.parse_schema(schema, named_schemas=named), named


class _Resolver:
    def __init__(self, reader_names: dict[str, Any], writer_names: dict[str, Any]):
        self.reader_names = reader_names
        self.writer_names = writer_names
        self.in_progress: set[tuple[str, str]] = set()

    def check(self, reader: Any, writer: Any, path: str) -> list[str]:
        reader = _deref(reader, self.reader_names)
        writer = _deref(writer, self.writer_names)
        r_type, w_type = _type_of(reader), _type_of(writer)
        if w_type == "union":
            return [
                problem
                for index, branch in enumerate(writer)
                for problem in self.check(reader, branch, f"{path}/{index}")
            ]
        if r_type == "union":
            if any(not self.check(branch, writer, path) for branch in reader):
                return []
            return [
                f"TYPE_MISMATCH at {path}: the reader's union has no branch that reads writer type {w_type}"
            ]
        if r_type in PRIMITIVES and w_type in PRIMITIVES:
            if r_type == w_type or r_type in PROMOTIONS.get(w_type, ()):
                return []
            return [f"TYPE_MISMATCH at {path}: reader type {r_type} cannot read writer type {w_type}"]
        if r_type != w_type:
            return [f"TYPE_MISMATCH at {path}: reader type {r_type} cannot read writer type {w_type}"]
        if r_type in ("record", "enum", "fixed") and not _names_match(reader, writer):
            return [
                f"NAME_MISMATCH at {path}: reader {r_type} {reader['name']} "
                f"does not match writer {w_type} {writer['name']}"
            ]
        if r_type == "record":
            return self._record(reader, writer, path)
        if r_type == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                return [f"MISSING_ENUM_SYMBOLS at {path}: the reader lacks {', '.join(missing)}"]
            return []
        if r_type == "fixed":
            if reader["size"] != writer["size"]:
                return [
                    f"FIXED_SIZE_MISMATCH at {path}: reader size {reader['size']}, writer {writer['size']}"
                ]
            return []
        if r_type == "array":
            return self.check(reader["items"], writer["items"], f"{path}/items")
        if r_type == "map":
            return self.check(reader["values"], writer["values"], f"{path}/values")
        return []

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
        pair = (reader["name"], writer["name"])
        if pair in self.in_progress:
            return []  # a recursive type: the pair is already being compared further up
        self.in_progress.add(pair)
        try:
            writer_fields = {f["name"]: f for f in writer["fields"]}
            problems: list[str] = []
            for index, field in enumerate(reader["fields"]):
                names = [field["name"], *field.get("aliases", [])]
                match = next((writer_fields[n] for n in names if n in writer_fields), None)
                if match is not None:
                    problems += self.check(field["type"], match["type"], f"{path}/fields/{index}")
                elif "default" not in field:
                    problems.append(
                        f"READER_FIELD_MISSING_DEFAULT_VALUE at {path}/fields/{index}: field "
                        f"'{field['name']}' has no default and is missing from the writer's schema"
                    )
            return problems
        finally:
            self.in_progress.discard(pair)


def _deref(schema: Any, names: dict[str, Any]) -> Any:
    if isinstance(schema, str):
        return schema if schema in PRIMITIVES else names[schema]
    if isinstance(schema, dict) and schema.get("type") in PRIMITIVES:
        return schema["type"]  # logical types are annotations; resolution uses the underlying type
    return schema


def _type_of(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    return str(schema["type"])


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def _names_match(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    accepted = {_short(reader["name"]), *(_short(a) for a in reader.get("aliases", []))}
    return _short(writer["name"]) in accepted


def reader_incompatibilities(reader: Any, writer: Any) -> list[str]:
    """Why data written with `writer` cannot be read with `reader` (schemas as parsed JSON)."""
    reader_parsed, reader_names = parse(reader)
    writer_parsed, writer_names = parse(writer)
    return _Resolver(reader_names, writer_names).check(reader_parsed, writer_parsed, "")


def incompatibilities(level: CompatibilityLevel, new: Any, previous: Sequence[Any]) -> list[str]:
    """Why `new` may not follow `previous` (oldest first) under `level`; empty means it may."""
    if level == CompatibilityLevel.NONE or not previous:
        return []
    against = previous if level.endswith("_TRANSITIVE") else previous[-1:]
    problems: list[str] = []
    for old in reversed(against):
        if level.startswith(("BACKWARD", "FULL")):
            problems += [
                f"{p} (the new schema cannot read data the old one wrote)"
                for p in reader_incompatibilities(new, old)
            ]
        if level.startswith(("FORWARD", "FULL")):
            problems += [
                f"{p} (the old schema cannot read data the new one writes)"
                for p in reader_incompatibilities(old, new)
            ]
    return problems
