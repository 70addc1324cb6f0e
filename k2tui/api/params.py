"""Query parameters of the API, declared once: the request parser and the OpenAPI document both read them.

Values are checked by the lake's own argument parsers, so the API and ``QueryEngine`` accept the same
forms and name them the same way. An empty value (``symbol=``) means the parameter was not given, as
in the seed's ``?table_type=TRADES&symbol=&exchange=``; an unknown or repeated parameter is an error,
so a typo such as ``simbol=`` is never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.datastructures import QueryParams

from k2tui.lake.filters import (
    DIRECTIONS,
    ORDER_COLUMNS,
    TIME_FORM,
    QueryArgumentError,
    parse_choice,
    parse_exchange,
    parse_interval,
    parse_limit,
    parse_symbol,
    parse_time,
)
from k2tui.model.trade import Exchange

TABLE_TYPES = ("TRADES",)


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    schema: dict[str, Any]
    """The OpenAPI schema of the value as sent."""
    parse: Callable[[str], Any]
    required: bool = False
    default: Any = None
    example: str | None = None


@dataclass(frozen=True)
class Endpoint:
    path: str
    summary: str
    description: str
    params: tuple[Param, ...] = field(default_factory=tuple)


def _table_type(value: str) -> str:
    if value.strip().upper() in TABLE_TYPES:
        return value.strip().upper()
    raise QueryArgumentError("table_type", "TRADES (the only table this API serves)", value)


def _interval(value: str) -> str:
    parse_interval(value, "interval")
    return value.strip().lower()


def _limit(maximum: int, default: int) -> Param:
    return Param(
        "limit",
        f"How many rows at most (default {default}, at most {maximum}: setting api.max_limit).",
        {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
        lambda value: parse_limit(value, "limit", maximum),
        default=default,
    )


def _time(name: str, role: str) -> Param:
    return Param(
        name,
        f"{role} Accepts {TIME_FORM}.",
        {"type": "string"},
        lambda value: parse_time(value, name),
        example="2026-01-13T15:30:45.123456Z",
    )


TABLE_TYPE = Param(
    "table_type",
    "The table to read; only TRADES (the seed's name for market_data.trades_v2).",
    {"type": "string", "enum": list(TABLE_TYPES), "default": "TRADES"},
    _table_type,
    default="TRADES",
)
SYMBOL = Param(
    "symbol",
    "Trading pair, normalised as the pipeline stores it: btcusdt, BTC/USD and XBT/USD all work.",
    {"type": "string"},
    lambda value: parse_symbol(value, "symbol"),
    example="BTCUSDT",
)
EXCHANGE = Param(
    "exchange",
    "Exchange, case-insensitive.",
    {"type": "string", "enum": [e.value for e in Exchange]},
    lambda value: parse_exchange(value, "exchange"),
)
START = _time("start", "Earliest trade time, inclusive.")
END = _time("end", "Trade time to stop before, exclusive; must be after start.")
ORDER = Param(
    "order",
    "Direction of the order: desc gives the latest trades first.",
    {"type": "string", "enum": list(DIRECTIONS), "default": "desc"},
    lambda value: parse_choice(value, "order", DIRECTIONS),
    default="desc",
)
ORDER_BY = Param(
    "order_by",
    "Column to order by; ties come in storage order.",
    {"type": "string", "enum": list(ORDER_COLUMNS), "default": "timestamp"},
    lambda value: parse_choice(value, "order_by", ORDER_COLUMNS),
    default="timestamp",
)
INTERVAL = Param(
    "interval",
    "Bar width: a number and a unit s, m, h or d (at most 31d); buckets are aligned to UTC.",
    {"type": "string", "default": "1m"},
    _interval,
    default="1m",
    example="5m",
)


def endpoints(max_limit: int) -> list[Endpoint]:
    """Every endpoint, with the limit parameters capped at `max_limit`."""
    filters = (TABLE_TYPE, SYMBOL, EXCHANGE, START, END)
    return [
        Endpoint(
            "/health",
            "Health of the API's dependencies",
            "The catalog (with the trades table) and the object store, each checked now; "
            "503 when any is down.",
        ),
        Endpoint("/openapi.json", "This document", "OpenAPI 3.1 description of every endpoint."),
        Endpoint(
            "/v1/trades",
            "Trades, latest first by default",
            "Every v2 field of each trade. Decimals are strings; each timestamp is ISO-8601 UTC with "
            "microseconds plus the raw integer microseconds in <name>_us.",
            (*filters, _limit(max_limit, min(100, max_limit)), ORDER, ORDER_BY),
        ),
        Endpoint("/v1/trades/count", "How many trades match the filters", "", filters),
        Endpoint(
            "/v1/bars",
            "OHLCV bars of one symbol",
            "The newest `limit` buckets, oldest first; open and close are the first and last trade's "
            "prices; volume is the summed quantity.",
            (
                replace(SYMBOL, required=True),
                INTERVAL,
                EXCHANGE,
                START,
                END,
                _limit(max_limit, min(500, max_limit)),
            ),
        ),
        Endpoint("/v1/symbols", "Symbols in the table", "Trade count, first and last trade per exchange."),
        Endpoint(
            "/v1/snapshots",
            "Iceberg snapshots of the trades table, newest first",
            "Id, time, operation, added-records, added-data-files and the whole summary.",
            (_limit(max_limit, min(100, max_limit)),),
        ),
    ]


def parse_query(query: QueryParams, endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint's parameters from the query string, defaults filled in; QueryArgumentError if bad."""
    known = {p.name: p for p in endpoint.params}
    for name in query:
        if name not in known:
            accepted = f"a known parameter (one of {', '.join(known)})" if known else "no query parameters"
            raise QueryArgumentError(name, accepted, query[name])
    values: dict[str, Any] = {}
    for param in endpoint.params:
        given = [v for v in query.getlist(param.name) if v.strip()]
        if len(given) > 1:
            raise QueryArgumentError(param.name, "a single value", given)
        if given:
            values[param.name] = param.parse(given[0])
        elif param.required:
            raise QueryArgumentError(param.name, "a value: this parameter is required", None)
        else:
            values[param.name] = param.default
    return values
