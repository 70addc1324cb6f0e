"""The OpenAPI 3.1 document, built from the same parameter declarations the request parser uses."""

from __future__ import annotations

from typing import Any

from k2tui import __version__
from k2tui.api.params import Endpoint

DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "exact decimal as text"}
TIME = {"type": "string", "format": "date-time", "description": "ISO-8601 UTC with microseconds"}
MICROS = {"type": "integer", "format": "int64", "description": "microseconds since the epoch, UTC"}
TEXT = {"type": "string"}
COUNT = {"type": "integer", "minimum": 0}


def _object(properties: dict[str, Any], *, nullable: tuple[str, ...] = ()) -> dict[str, Any]:
    props = {
        name: ({"anyOf": [schema, {"type": "null"}]} if name in nullable else schema)
        for name, schema in properties.items()
    }
    return {"type": "object", "properties": props, "required": list(properties)}


def _timed(name: str) -> dict[str, Any]:
    return {name: TIME, name + "_us": MICROS}


def _list_of(item: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    items = {"$ref": f"#/components/schemas/{item}"}
    properties: dict[str, Any] = {"data": {"type": "array", "items": items}}
    if meta is not None:
        properties["meta"] = meta
    return _object(properties)


FILTERS = _object(
    {"symbol": TEXT, "exchange": TEXT, **_timed("start"), **_timed("end")},
    nullable=("symbol", "exchange", "start", "start_us", "end", "end_us"),
)
SCHEMAS: dict[str, Any] = {
    "Trade": _object(
        {
            "message_id": {"type": "string", "format": "uuid"},
            "trade_id": TEXT,
            "symbol": TEXT,
            "exchange": {"type": "string", "enum": ["BINANCE", "KRAKEN"]},
            "asset_class": TEXT,
            **_timed("timestamp"),
            "price": DECIMAL,
            "quantity": DECIMAL,
            "side": {"type": "string", "enum": ["BUY", "SELL"]},
            "vendor_data": {"type": "object", "additionalProperties": TEXT},
            "sequence_number": {"type": "integer", "format": "int64"},
            **_timed("ingestion_timestamp"),
        },
        nullable=("sequence_number",),
    ),
    "Trades": _list_of(
        "Trade",
        _object(
            {
                "table_type": TEXT,
                "count": COUNT,
                "limit": COUNT,
                "order_by": TEXT,
                "order": TEXT,
                "filters": FILTERS,
                "took_ms": {"type": "number"},
            }
        ),
    ),
    "Count": _object({"count": COUNT, "table_type": TEXT, "filters": FILTERS}),
    "Bar": _object(
        {
            **_timed("start"),
            "open": DECIMAL,
            "high": DECIMAL,
            "low": DECIMAL,
            "close": DECIMAL,
            "volume": DECIMAL,
            "trades": COUNT,
        }
    ),
    "Bars": _list_of("Bar", _object({"symbol": TEXT, "interval": TEXT, "count": COUNT})),
    "Symbol": _object(
        {"symbol": TEXT, "exchange": TEXT, "trades": COUNT, **_timed("first"), **_timed("last")}
    ),
    "Symbols": _list_of("Symbol"),
    "Snapshot": _object(
        {
            "snapshot_id": {"type": "integer", "format": "int64"},
            "parent_id": {"type": "integer", "format": "int64"},
            **_timed("time"),
            "operation": TEXT,
            "added_records": COUNT,
            "added_data_files": COUNT,
            "summary": {"type": "object", "additionalProperties": TEXT},
            "current": {"type": "boolean"},
        },
        nullable=("parent_id", "operation", "added_records", "added_data_files"),
    ),
    "Snapshots": _list_of("Snapshot", _object({"count": COUNT, "total": COUNT})),
    "Health": _object(
        {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "dependencies": {
                "type": "object",
                "additionalProperties": _object(
                    {"status": {"type": "string", "enum": ["up", "down"]}, "detail": TEXT}
                ),
            },
        }
    ),
    "Error": {
        "type": "object",
        "properties": {
            "error": TEXT,
            "message": TEXT,
            "parameter": {**TEXT, "description": "the parameter at fault (422 only)"},
            "accepted": {**TEXT, "description": "the form it accepts (422 only)"},
            "got": {"description": "the value sent (422 only)"},
        },
        "required": ["error", "message"],
    },
}
RESPONSES = {
    "/health": "Health",
    "/openapi.json": None,
    "/v1/trades": "Trades",
    "/v1/trades/count": "Count",
    "/v1/bars": "Bars",
    "/v1/symbols": "Symbols",
    "/v1/snapshots": "Snapshots",
}


def _json(description: str, schema: str | None) -> dict[str, Any]:
    body = {"$ref": f"#/components/schemas/{schema}"} if schema else {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    parameters = []
    for param in endpoint.params:
        entry: dict[str, Any] = {
            "name": param.name,
            "in": "query",
            "required": param.required,
            "description": param.description,
            "schema": param.schema,
        }
        if param.example is not None:
            entry["example"] = param.example
        parameters.append(entry)
    responses = {
        "200": _json("OK", RESPONSES[endpoint.path]),
        "422": _json("A parameter is unknown, repeated or of the wrong form", "Error"),
        "503": _json(
            "The lake (catalog or object store) cannot be reached",
            "Health" if endpoint.path == "/health" else "Error",
        ),
    }
    return {
        "summary": endpoint.summary,
        "description": endpoint.description,
        "operationId": endpoint.path.strip("/").replace("/", "_").replace(".", "_"),
        "parameters": parameters,
        "responses": responses,
    }


def openapi_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "k2tui query API",
            "version": __version__,
            "description": "Read-only access to market_data.trades_v2. Decimals are strings, never floats.",
        },
        "paths": {e.path: {"get": _operation(e)} for e in endpoints},
        "components": {"schemas": SCHEMAS},
    }
