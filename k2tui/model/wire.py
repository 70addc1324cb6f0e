"""Confluent's Avro wire format: magic byte 0, a 4-byte big-endian schema id, the Avro body.

Decoding failures raise one typed error that carries the original bytes, so the consumer can put
the message in the dead-letter queue as it arrived. Schemas are looked up by id through whatever
registry client is given and cached, since ids are immutable.

The codec is cavro (Cython): on v2 records it measured about 1.3× fastavro's encode rate and 1.5×
its decode rate on this machine, which is what takes one core past 150,000 messages a second each
way (see `k2tui bench serde`). cavro is imported when the first codec is built, not with this
module, so the cockpit does not pay for it (and numpy under it) before its first frame.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import cavro

MAGIC_BYTE = 0
HEADER_SIZE = 5
_HEADER = struct.Struct(">BI")

# Decoding reads the body followed by this marker, as a record of (the message's value, 16 fixed
# bytes). cavro does not say where a read stopped, so the marker is how bytes left over after the
# value show: they are read in its place. Only a payload that ends in the marker itself would pass.
_END_MARK = b"k2tui:end-of-msg"


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


@dataclass(slots=True)
class DecodedMessage:
    """Not frozen: a frozen dataclass costs twice as much to build, on every message decoded."""

    schema_id: int
    datum: Any


def frame_header(schema_id: int) -> bytes:
    return _HEADER.pack(MAGIC_BYTE, schema_id)


def _parsed(schema: str | dict[str, Any]) -> Any:
    """The schema as JSON data (text is parsed; data is used as it is)."""
    return json.loads(schema) if isinstance(schema, str) else schema


def _cavro_schema(schema: Any) -> cavro.Schema:
    import cavro

    return cavro.Schema(schema, options=cavro.DEFAULT_OPTIONS.replace(record_decodes_to_dict=True))


def _marked_reader(schema: Any) -> cavro.Schema:
    """A reader of the value followed by the end marker; see `_END_MARK`."""
    return _cavro_schema(
        {
            "type": "record",
            "name": "K2WireFramed",
            "fields": [
                {"name": "value", "type": schema},
                {"name": "end", "type": {"type": "fixed", "name": "K2WireEnd", "size": len(_END_MARK)}},
            ],
        }
    )


class AvroEncoder:
    """Encodes data for one registered schema (JSON text or data); the header is built once."""

    def __init__(self, schema_id: int, schema: str | dict[str, Any]):
        self.schema_id = schema_id
        self._schema = _cavro_schema(_parsed(schema))
        self._header = frame_header(schema_id)

    def encode(self, datum: Any) -> bytes:
        return self._header + self._schema.binary_encode(datum)


class AvroDecoder:
    """Decodes framed messages of any schema id, fetching each writer schema once."""

    def __init__(self, lookup: SchemaLookup):
        self._lookup = lookup
        self._readers: dict[int, cavro.Schema] = {}
        self._schemas: dict[int, Any] = {}

    def add_schema(self, schema_id: int, schema: str | dict[str, Any]) -> None:
        """Seed the cache (a producer and consumer in one process need no lookup)."""
        self._schemas[schema_id] = _parsed(schema)
        self._readers[schema_id] = _marked_reader(self._schemas[schema_id])

    def writer_schema(self, schema_id: int) -> Any:
        """The schema (JSON data) that messages of `schema_id` were written with; decoded ones only."""
        return self._schemas[schema_id]

    def knows(self, raw: bytes) -> bool:
        """Whether `raw` decodes without a registry lookup (its schema id is cached, or it is malformed)."""
        try:
            return _HEADER.unpack_from(raw)[1] in self._readers
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
        reader = self._readers.get(schema_id)
        if reader is None:
            reader = self._fetch(schema_id, raw)
        try:
            marked = reader.binary_decode(raw[HEADER_SIZE:] + _END_MARK)
        except Exception as error:  # cavro raises many types on corrupt input
            raise WireFormatError(
                WireErrorKind.BAD_BODY,
                f"Avro body does not decode with schema id {schema_id}: {type(error).__name__}: {error}",
                bytes(raw),
                schema_id,
            ) from error
        if marked["end"] != _END_MARK:
            left = len(raw) - HEADER_SIZE - len(reader.binary_encode(marked)) + len(_END_MARK)
            raise WireFormatError(
                WireErrorKind.BAD_BODY,
                f"{left} bytes left over after the record of schema id {schema_id}; "
                "the message was written with a different schema",
                bytes(raw),
                schema_id,
            )
        return DecodedMessage(schema_id, marked["value"])

    def _fetch(self, schema_id: int, raw: bytes) -> cavro.Schema:
        try:
            text = self._lookup.schema_text_by_id(schema_id)
        except SchemaNotFoundError as error:
            raise WireFormatError(
                WireErrorKind.UNKNOWN_SCHEMA,
                f"schema id {schema_id} is not in the Schema Registry: {error}",
                bytes(raw),
                schema_id,
            ) from error
        try:
            schema = _parsed(text)
            reader = _marked_reader(schema)
        except Exception as error:  # cavro refuses what it cannot read with several exception types
            raise WireFormatError(
                WireErrorKind.BAD_BODY,
                f"schema id {schema_id} from the Schema Registry cannot be read: "
                f"{type(error).__name__}: {error}",
                bytes(raw),
                schema_id,
            ) from error
        self._schemas[schema_id] = schema
        self._readers[schema_id] = reader
        return reader
