"""The v2 record's rules, checked all at once so a rejected record says everything wrong with it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from k2tui.model.symbols import ASSET_ALIASES
from k2tui.model.trade import ASSET_CLASS, VENDOR_KEYS, Exchange, Side, TradeV2

# Patterns are used with fullmatch and [0-9], so no trailing newline or non-ASCII digit slips through.
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
KRAKEN_V1_HASH = "-[0-9a-f]{8,}"
"""What follows the trade time in a Kraken v1 id, which has no exchange trade id to carry."""
TRADE_ID_PATTERNS: dict[str, re.Pattern[str]] = {
    Exchange.BINANCE: re.compile(r"BINANCE-([0-9]+)"),
    # v2 carries a trade id; v1 has none, so its id is the trade time and a hash of the trade.
    Exchange.KRAKEN: re.compile(rf"KRAKEN-([0-9]+)({KRAKEN_V1_HASH})?"),
}
SYMBOL_PATTERN = re.compile(r"[A-Z0-9]{2,20}")
DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
MAX_LONG = 2**63 - 1
# The lake stores decimal(38, 18): at most 18 places after the point and 20 before it.
MAX_SCALE = 18
MAX_INTEGER_DIGITS = 20

# Microsecond timestamps between 2009-01-03 (the first bitcoin block) and 2100-01-01. A value
# outside is almost always a unit mistake (milliseconds or nanoseconds), so the reason says so.
MIN_TIMESTAMP_US = 1_230_940_800_000_000
MAX_TIMESTAMP_US = 4_102_444_800_000_000
DEFAULT_MAX_CLOCK_SKEW_US = 300_000_000

FIELDS: tuple[str, ...] = tuple(TradeV2.__struct_fields__)
FIELD_SET: frozenset[str] = frozenset(FIELDS)
REQUIRED: frozenset[str] = FIELD_SET - {"sequence_number"}


@dataclass(frozen=True, slots=True)
class Violation:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def validate(
    record: TradeV2 | Mapping[str, Any], *, max_clock_skew_us: int = DEFAULT_MAX_CLOCK_SKEW_US
) -> list[Violation]:
    """Every way `record` breaks the v2 rules; an empty list means it is a valid v2 trade.

    Accepts the typed record or a mapping as decoded from Avro or JSON (decimals as text).
    """
    data = msgspec.structs.asdict(record) if isinstance(record, TradeV2) else record
    if not isinstance(data, Mapping):
        return [Violation("record", f"expected a mapping of v2 fields, got {type(data).__name__}")]
    found: list[Violation] = []
    keys = data.keys()
    if len(keys) != len(FIELDS) or keys != FIELD_SET:  # the common case, a complete record, skips both
        for name in sorted(REQUIRED - keys):
            found.append(Violation(name, "missing"))
        for name in sorted(keys - FIELD_SET):
            found.append(Violation(str(name), "not a v2 field"))
    exchange = data.get("exchange")
    if not isinstance(exchange, str):
        exchange = None
    for name, rule in _RULES:
        if name in data:
            reason = rule(data[name], exchange, data)
            if reason:
                found.append(Violation(name, reason))
    trade_time, ingested = data.get("timestamp"), data.get("ingestion_timestamp")
    times_valid = not any(v.field in ("timestamp", "ingestion_timestamp") for v in found)
    if (
        times_valid
        and _is_int(trade_time)
        and _is_int(ingested)
        and trade_time - ingested > max_clock_skew_us
    ):
        found.append(
            Violation(
                "timestamp",
                f"trade time is {(trade_time - ingested) / 1e6:.3f} s after its ingestion time "
                f"(allowed skew {max_clock_skew_us / 1e6:g} s): the exchange clock or the unit is wrong",
            )
        )
    return found


Rule = Callable[[Any, "str | None", Mapping[str, Any]], "str | None"]
"""A field's check: its value, the record's exchange (when a string) and the whole record."""


def _asset_class(value: Any) -> str | None:
    return None if value == ASSET_CLASS else f"must be {ASSET_CLASS!r}, got {value!r}"


def _is_int(value: Any) -> bool:
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def _message_id(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a UUID string, got {type(value).__name__}"
    if len(value) != 36:
        return f"must be a 36-character UUID, got {len(value)} characters: {value!r}"
    if not UUID_PATTERN.fullmatch(value):
        return f"must be a UUID like 123e4567-e89b-12d3-a456-426614174000, got {value!r}"
    return None


def _trade_id(value: Any, exchange: Any, sequence_number: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    pattern = TRADE_ID_PATTERNS.get(exchange)
    if pattern is None:
        return None  # the exchange field reports its own problem
    match = pattern.fullmatch(value)
    if match is None:
        forms = {
            Exchange.BINANCE: "BINANCE-{t}",
            Exchange.KRAKEN: "KRAKEN-{trade_id} or KRAKEN-{timestamp}-{hash}",
        }
        return f"must look like {forms[exchange]} for {exchange}, got {value!r}"
    if match.lastindex == 2:  # Kraken v1: no exchange trade id, so nothing to sequence on
        if sequence_number is not None:
            return f"Kraken v1 ids have no trade id, so sequence_number must be null, not {sequence_number}"
        return None
    if _is_int(sequence_number) and int(match[1]) != sequence_number:
        return f"exchange trade id {match[1]} differs from sequence_number {sequence_number}"
    return None


def _symbol(value: Any, exchange: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not SYMBOL_PATTERN.fullmatch(value):
        return f"must be upper case letters and digits with no separator, like BTCUSDT, got {value!r}"
    if exchange == Exchange.KRAKEN and (value.startswith(_ALIASES) or value.endswith(_ALIASES)):
        for alias, name in ASSET_ALIASES.items():
            if value.startswith(alias) or value.endswith(alias):
                return f"{value!r} is not normalised: Kraken's {alias} must be written {name}"
    return None


def _exchange(value: Any) -> str | None:
    if value in Exchange.__members__.values():
        return None
    return f"must be one of {', '.join(Exchange)}, got {value!r}"


def _side(value: Any) -> str | None:
    if value in Side.__members__.values():
        return None
    return f"must be BUY or SELL (the taker's side), got {value!r}"


def timestamp_problem(value: Any) -> str | None:
    if not _is_int(value):
        return f"must be an integer of microseconds since the epoch, got {type(value).__name__}"
    if value < MIN_TIMESTAMP_US:
        hint = " (it looks like milliseconds or seconds)" if value > 0 else ""
        return f"{value} is before 2009 as microseconds since the epoch{hint}"
    if value >= MAX_TIMESTAMP_US:
        hint = " (it looks like nanoseconds)" if value > MAX_TIMESTAMP_US * 100 else ""
        return f"{value} is after 2100 as microseconds since the epoch{hint}"
    return None


def decimal_problem(value: Any) -> str | None:
    if isinstance(value, float):
        return "must be an exact decimal (Decimal or decimal text), never a float"
    if isinstance(value, str):
        if not DECIMAL_TEXT.fullmatch(value):
            return f"must be plain decimal text such as '86414.17' or '4.6e-05', got {value!r}"
        value = Decimal(value)
    if not isinstance(value, Decimal):
        return f"must be a decimal, got {type(value).__name__}"
    if not value.is_finite():
        return f"must be a finite number, got {value}"
    if value <= 0:
        return f"must be greater than zero, got {value}"
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        return (
            f"{value:.6e} has more than {MAX_INTEGER_DIGITS} digits before the point (lake: decimal(38,18))"
        )
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_SCALE:  # trailing zeros may take it back in range
        exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_SCALE:
        return f"{value} has more than {MAX_SCALE} decimal places (the lake's decimal(38,18))"
    return None


def _vendor_data(value: Any, exchange: Any, symbol: Any, side: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"must be a map of strings, got {type(value).__name__}"
    not_strings = sorted(str(k) for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str))
    if not_strings:
        return f"keys and values must be strings; not so for {', '.join(not_strings)}"
    required = VENDOR_KEYS.get(exchange)
    if required is None:
        return None
    missing = required - value.keys()
    if missing:
        return f"{exchange} trades need {', '.join(sorted(missing))}"
    pair = value["base_asset"] + value["quote_asset"]
    if isinstance(symbol, str) and pair != symbol:
        return f"base_asset + quote_asset is {pair}, not the symbol {symbol}"
    if exchange == Exchange.BINANCE:
        maker = value["is_buyer_maker"]
        if maker not in ("true", "false"):
            return f"is_buyer_maker must be 'true' or 'false', got {maker!r}"
        taker = Side.SELL if maker == "true" else Side.BUY
        if side in (Side.BUY, Side.SELL) and side != taker:
            did = "sold" if maker == "true" else "bought"
            return f"is_buyer_maker={maker} means the taker {did}, but side is {side}"
    return None


def _sequence_number(value: Any) -> str | None:
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value <= MAX_LONG:
        return f"must be null or an integer from 0 to 2^63-1, got {value!r}"
    return None


_ALIASES = tuple(ASSET_ALIASES)
_RULES: tuple[tuple[str, Rule], ...] = (
    ("message_id", lambda v, exchange, data: _message_id(v)),
    ("trade_id", lambda v, exchange, data: _trade_id(v, exchange, data.get("sequence_number"))),
    ("symbol", lambda v, exchange, data: _symbol(v, exchange)),
    ("exchange", lambda v, exchange, data: _exchange(v)),
    ("asset_class", lambda v, exchange, data: _asset_class(v)),
    ("timestamp", lambda v, exchange, data: timestamp_problem(v)),
    ("price", lambda v, exchange, data: decimal_problem(v)),
    ("quantity", lambda v, exchange, data: decimal_problem(v)),
    ("side", lambda v, exchange, data: _side(v)),
    (
        "vendor_data",
        lambda v, exchange, data: _vendor_data(v, exchange, data.get("symbol"), data.get("side")),
    ),
    ("sequence_number", lambda v, exchange, data: _sequence_number(v)),
    ("ingestion_timestamp", lambda v, exchange, data: timestamp_problem(v)),
)
"""Each field's rule, in the order its violations are reported."""
