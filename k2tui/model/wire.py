"""Confluent's Avro wire format: magic byte 0, a 4-byte big-endian schema id, the Avro body.

Decoding failures raise one typed error that carries the original bytes, so the consumer can put
the message in the dead-letter queue as it arrived. Schemas are looked up by id through whatever
registry client is given and cached, since ids are immutable.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import fastavro
from fastavro import schemaless_reader, schemaless_writer

MAGIC_BYTE = 0
HEADER_SIZE = 5
_HEADER = struct.Struct(">BI")


class SchemaNotFoundError(LookupError):
    """The registry answered that no schema has this id (permanent, unlike the registry being down)."""


class SchemaLookup(Protocol):
    def schema_text_by_id(self, schema_id: int) -> str:
        """The schema registered under `schema_id`; raises SchemaNotFoundError if there is none."""
        ...


class WireErrorKind(StrEnum):
    TOO_SHORT = "too_short"
    BAD_MAGIC = "bad_magic"
    UNKNOWN_SCHEMA = "unknown_schema"
    BAD_BODY = "bad_body"


class WireFormatError(ValueError):
    """Bytes that are not a decodable Confluent Avro message; `raw` is exactly what was received."""

    def __init__(self, kind: WireErrorKind, reason: str, raw: bytes, schema_id: int | None = None):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.raw = raw
        self.schema_id = schema_id


@dataclass(frozen=True, slots=True)
class DecodedMessage:
    schema_id: int
    datum: Any


def frame_header(schema_id: int) -> bytes:
    return _HEADER.pack(MAGIC_BYTE, schema_id)


class AvroEncoder:
    """Encodes data for one registered schema; the header is built once."""

    def __init__(self, schema_id: int, schema: dict[str, Any]):
        self.schema_id = schema_id
        self.schema = fastavro.parse_schema(schema)
        self._header = frame_header(schema_id)

    def encode(self, datum: Any) -> bytes:
        buffer = io.BytesIO()
        buffer.write(self._header)
        schemaless_writer(buffer, self.schema, datum)
        return buffer.getvalue()


class AvroDecoder:
    """Decodes framed messages of any schema id, fetching each writer schema once."""

    def __init__(self, lookup: SchemaLookup):
        self._lookup = lookup
        self._schemas: dict[int, dict[str, Any]] = {}

    def add_schema(self, schema_id: int, schema: dict[str, Any]) -> None:
        """Seed the cache (a producer and consumer in one process need no lookup)."""
        self._schemas[schema_id] = fastavro.parse_schema(schema)

    def knows(self, raw: bytes) -> bool:
        """Whether `raw` decodes without a registry lookup (its schema id is cached, or it is malformed)."""
        try:
            return _HEADER.unpack_from(raw)[1] in self._schemas
        except struct.error:
            return True

    def decode(self, raw: bytes) -> DecodedMessage:
        try:
            magic, schema_id = _HEADER.unpack_from(raw)
        except struct.error:
            raise WireFormatError(
                WireErrorKind.TOO_SHORT,
                f"{len(raw)} bytes is shorter than the 5-byte Confluent header; not an Avro message",
                bytes(raw),
            ) from None
        if magic != MAGIC_BYTE:
            raise WireFormatError(
                WireErrorKind.BAD_MAGIC,
                f"first byte is {magic:#04x}, not the Confluent magic byte 0x00; "
                "the producer did not use the Schema Registry wire format",
                bytes(raw),
            )
        schema = self._schemas.get(schema_id)
        if schema is None:
            schema = self._fetch(schema_id, raw)
        body = io.BytesIO(raw)
        body.seek(HEADER_SIZE)
        try:
            datum = schemaless_reader(body, schema, None)
        except Exception as error:  # fastavro raises many types on corrupt input
            raise WireFormatError(
                WireErrorKind.BAD_BODY,
                f"Avro body does not decode with schema id {schema_id}: {type(error).__name__}: {error}",
                bytes(raw),
                schema_id,
            ) from error
        left = len(raw) - body.tell()
        if left:
            raise WireFormatError(
                WireErrorKind.BAD_BODY,
                f"{left} bytes left over after the record of schema id {schema_id}; "
                "the message was written with a different schema",
                bytes(raw),
                schema_id,
            )
        return DecodedMessage(schema_id, datum)

    def _fetch(self, schema_id: int, raw: bytes) -> dict[str, Any]:
        try:
            text = self._lookup.schema_text_by_id(schema_id)
        except SchemaNotFoundError as error:
            raise WireFormatError(
                WireErrorKind.UNKNOWN_SCHEMA,
                f"schema id {schema_id} is not in the Schema Registry: {error}",
                bytes(raw),
                schema_id,
            ) from error
        schema = fastavro.parse_schema(json.loads(text))
        self._schemas[schema_id] = schema
        return schema
