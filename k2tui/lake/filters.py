"""The arguments of a trades query, checked once, and the filter they make at each level of a scan.

A :class:`TradeFilter` is used three ways: against a data file's column bounds from the Iceberg manifests
(skip the file, or count it whole without reading it), as the pyiceberg ``row_filter`` pushed into a
scan, and as a mask over rows already in memory. Every bad argument is a :class:`QueryArgumentError`
that names the argument and the form it accepts, which the HTTP API answers as a 422.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    LessThan,
)

from k2tui.lake.values import micros_of
from k2tui.model.symbols import SymbolError, normalise_symbol
from k2tui.model.trade import Exchange

ORDER_COLUMNS = ("timestamp", "ingestion_timestamp", "price", "quantity", "sequence_number")
"""Columns a query may order by: the ones whose file bounds let a latest-N query stop early."""
DIRECTIONS = ("asc", "desc")
MAX_LIMIT = 100_000
TIME_FORM = (
    "an ISO-8601 date-time such as 2026-01-13T15:30:45.123456Z (no zone means UTC) "
    "or integer microseconds since the epoch"
)
# Integers below this are seconds or milliseconds by mistake (1e14 µs is 1973); above it, year 5138.
_MICROS_RANGE = (10**14, 10**17)
_INTERVAL = re.compile(r"([1-9][0-9]*)([smhd])")
_UNIT_MICROS = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
MAX_INTERVAL_MICROS = 31 * _UNIT_MICROS["d"]


class QueryArgumentError(ValueError):
    """An argument of the wrong form; says which argument and what it accepts."""

    def __init__(self, argument: str, accepted: str, got: object) -> None:
        self.argument = argument
        self.accepted = accepted
        self.got = got
        super().__init__(f"{argument}: expected {accepted}, got {got!r}")


def parse_symbol(value: object, argument: str = "symbol") -> str | None:
    """``btcusdt``, ``BTC/USD`` and ``XBT/USD`` are normalised as the pipeline stores them."""
    if value is None:
        return None
    accepted = "a trading pair such as BTCUSDT, btcusdt or BTC/USD"
    if not isinstance(value, str) or not value.strip():
        raise QueryArgumentError(argument, accepted, value)
    try:
        return normalise_symbol(value)
    except SymbolError as error:
        raise QueryArgumentError(argument, f"{accepted} ({error})", value) from error


def parse_exchange(value: object, argument: str = "exchange") -> Exchange | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().upper() in Exchange.__members__:
        return Exchange(value.strip().upper())
    raise QueryArgumentError(argument, "one of " + ", ".join(Exchange), value)


def parse_time(value: object, argument: str) -> int | None:
    """Microseconds since the epoch from a datetime, an ISO-8601 text or an integer of microseconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return micros_of(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return micros_of(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = _MICROS_RANGE
        if not low <= value < high:
            raise QueryArgumentError(
                argument, TIME_FORM + " (this integer looks like seconds or milliseconds)", value
            )
        return value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise QueryArgumentError(argument, TIME_FORM, value) from None
        return micros_of(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    raise QueryArgumentError(argument, TIME_FORM, value)


def parse_limit(value: object, argument: str = "limit", maximum: int = MAX_LIMIT) -> int:
    accepted = f"an integer from 1 to {maximum}"
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise QueryArgumentError(argument, accepted, value)
    return value


def parse_choice(value: object, argument: str, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise QueryArgumentError(argument, "one of " + ", ".join(choices), value)


def parse_interval(value: object, argument: str = "interval") -> int:
    """``1m``, ``5m``, ``1h``, ``1d`` (s, m, h, d; at most 31 days) → microseconds."""
    accepted = "a number and a unit s, m, h or d, such as 1m, 5m, 1h or 1d (at most 31d)"
    match = _INTERVAL.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    if match is None:
        raise QueryArgumentError(argument, accepted, value)
    micros = int(match[1]) * _UNIT_MICROS[match[2]]
    if micros > MAX_INTERVAL_MICROS:
        raise QueryArgumentError(argument, accepted, value)
    return micros


@dataclass(frozen=True)
class TradeFilter:
    """Which trades a query wants: ``start`` inclusive, ``end`` exclusive, both microseconds UTC."""

    symbol: str | None = None
    exchange: Exchange | None = None
    start: int | None = None
    end: int | None = None

    @classmethod
    def parse(
        cls, *, symbol: object = None, exchange: object = None, start: object = None, end: object = None
    ) -> TradeFilter:
        made = cls(parse_symbol(symbol), parse_exchange(exchange), parse_time(start, "start"))
        end_us = parse_time(end, "end")
        if end_us is not None and made.start is not None and end_us <= made.start:
            raise QueryArgumentError("end", "a time after start", end)
        return cls(made.symbol, made.exchange, made.start, end_us)

    def expression(self) -> BooleanExpression:
        """The pyiceberg row filter: pushed into the scan, it prunes files and row groups by statistics."""
        terms: list[BooleanExpression] = []
        if self.symbol is not None:
            terms.append(EqualTo("symbol", self.symbol))
        if self.exchange is not None:
            terms.append(EqualTo("exchange", self.exchange.value))
        if self.start is not None:
            terms.append(GreaterThanOrEqual("timestamp", self.start))
        if self.end is not None:
            terms.append(LessThan("timestamp", self.end))
        if not terms:
            return AlwaysTrue()
        return terms[0] if len(terms) == 1 else And(*terms)

    def mask(self, rows: pa.Table) -> pa.ChunkedArray | None:
        """Which of `rows` (timestamp as int64 µs) match; None when all do."""
        conditions = []
        if self.symbol is not None:
            conditions.append(pc.equal(rows["symbol"], self.symbol))
        if self.exchange is not None:
            conditions.append(pc.equal(rows["exchange"], self.exchange.value))
        if self.start is not None:
            conditions.append(pc.greater_equal(rows["timestamp"], self.start))
        if self.end is not None:
            conditions.append(pc.less(rows["timestamp"], self.end))
        if not conditions:
            return None
        combined = conditions[0]
        for condition in conditions[1:]:
            combined = pc.and_(combined, condition)
        return combined

    def may_match(self, lower: Mapping[str, Any], upper: Mapping[str, Any]) -> bool:
        """False only when a file's column bounds prove it holds no matching row."""
        for column, wanted in self._equalities():
            low, high = lower.get(column), upper.get(column)
            if (low is not None and wanted < low) or (high is not None and wanted > high):
                return False
        low, high = lower.get("timestamp"), upper.get("timestamp")
        if self.start is not None and high is not None and high < self.start:
            return False
        return not (self.end is not None and low is not None and low >= self.end)

    def matches_all(self, lower: Mapping[str, Any], upper: Mapping[str, Any]) -> bool:
        """True only when the bounds prove every row of the file matches (so it counts without a read)."""
        for column, wanted in self._equalities():
            if not lower.get(column) == upper.get(column) == wanted:
                return False
        low, high = lower.get("timestamp"), upper.get("timestamp")
        if self.start is not None and (low is None or low < self.start):
            return False
        return not (self.end is not None and (high is None or high >= self.end))

    def _equalities(self) -> list[tuple[str, str]]:
        pairs = []
        if self.symbol is not None:
            pairs.append(("symbol", self.symbol))
        if self.exchange is not None:
            pairs.append(("exchange", self.exchange.value))
        return pairs

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "exchange": None if self.exchange is None else self.exchange.value,
            "start": self.start,
            "end": self.end,
        }
