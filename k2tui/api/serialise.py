"""JSON for the API: decimals as exact strings (never floats), timestamps as ISO-8601 text and raw µs.

A JSON number is a float to most clients, and a float cannot hold 0.1 or a 1e-8 quantity exactly, so
every Decimal goes out as its plain positional text. Each timestamp goes out twice: ``timestamp`` is
``2026-01-13T15:30:45.123456Z`` for people, ``timestamp_us`` the int64 of the v2 record for programs.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from enum import Enum
from typing import Any

from starlette.responses import Response

from k2tui.lake.values import UtcTimestamp
from k2tui.model.trade import decimal_text


def record(fields: dict[str, Any]) -> dict[str, Any]:
    """One object: each timestamp field also as ``<name>_us``, every value made JSON-safe."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        out[name] = plain(value)
        if isinstance(value, UtcTimestamp):
            out[name + "_us"] = value.micros
    return out


def plain(value: Any) -> Any:
    """A value JSON can carry without loss: Decimal → text, enum → its value, dataclass → object."""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, UtcTimestamp):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return record(value)
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def json_response(content: Any, status: int = 200) -> Response:
    body = json.dumps(content, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return Response(body, status_code=status, media_type="application/json")
