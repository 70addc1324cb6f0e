"""Checks and conversions every exchange parser shares, written for the hot path.

Each raises Rejected with a reason a person can act on; the slow, wordy path runs only on bad input.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from uuid import UUID

from k2tui.ingest.outcome import Rejected
from k2tui.model.symbols import SymbolError, split_symbol
from k2tui.model.validation import (
    DEFAULT_MAX_CLOCK_SKEW_US,
    MAX_INTEGER_DIGITS,
    MAX_LONG,
    MAX_SCALE,
    MAX_TIMESTAMP_US,
    MIN_TIMESTAMP_US,
    decimal_problem,
    timestamp_problem,
)

# message_id is the RFC 4122 name-based UUID (version 3) of "<symbol>/<trade id>" in this namespace, so
# a trade seen twice (a Kraken snapshot after a reconnect, a repeated event) gets the same message_id and
# the consumer's de-duplication drops the copy. The symbol is part of the name because exchanges number
# trades per symbol: BTCUSDT and ETHUSDT can both have trade 5429871000.
MESSAGE_ID_NAMESPACE = UUID("6f0e9a52-8a3e-4f43-9a57-2b5d8c1e7a10").bytes
# The variant nibble of an RFC 4122 UUID is 10xx: map the hash's nibble to it without int().
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def message_id_for(symbol: str, trade_id: str) -> str:
    """``uuid.uuid3(namespace, f"{symbol}/{trade_id}")`` as text, three times faster than the uuid module."""
    name = f"{symbol}/{trade_id}".encode()
    h = hashlib.md5(MESSAGE_ID_NAMESPACE + name, usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-3{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def positive_decimal(value: str | Decimal, name: str) -> Decimal:
    """`value` (exchange text or an exactly decoded JSON number) as a Decimal the lake can hold."""
    if type(value) is str and _PLAIN_DECIMAL.fullmatch(value):
        # Plain text with at most 18 places and 20 digits before the point: only the sign and zero remain.
        number = Decimal(value)
        if number > 0:
            return number
    return _checked_decimal(value, name)


# What Binance and Kraken v1 send: digits, a point, at most 18 places; no sign, exponent or NaN.
_PLAIN_DECIMAL = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,18})?")


def _checked_decimal(value: str | Decimal, name: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise Rejected(f"{name} {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise Rejected(f"{name} {value!r} is not a finite number")
    if number <= 0:
        raise Rejected(f"{name} {value!r} must be greater than zero")
    if number.adjusted() < MAX_INTEGER_DIGITS and number.as_tuple().exponent >= -MAX_SCALE:  # type: ignore[operator]
        return number
    problem = decimal_problem(number)
    if problem is None:  # more than 18 places, but only trailing zeros: exact after normalising
        return number.normalize()
    raise Rejected(f"{name} {value!r}: {problem}")


def trade_time_us(value: int, received_us: int, name: str) -> int:
    """A trade time in µs, inside the v2 range and not more than the allowed skew after its receipt."""
    if not MIN_TIMESTAMP_US <= value < MAX_TIMESTAMP_US:
        raise Rejected(f"{name}: {timestamp_problem(value)}")
    if value - received_us > DEFAULT_MAX_CLOCK_SKEW_US:
        ahead = (value - received_us) / 1e6
        raise Rejected(f"{name} is {ahead:,.0f} s ahead of its receipt: the exchange clock or unit is wrong")
    return value


def exchange_trade_id(value: int, name: str) -> int:
    if not 0 <= value <= MAX_LONG:
        raise Rejected(f"{name} {value} is outside 0 to 2^63-1")
    return value


def iso_time_us(text: str, name: str) -> int:
    """RFC 3339 text (``2026-11-21T16:00:00.247469Z``) as exact microseconds since the epoch."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise Rejected(f"{name} {text!r} is not an RFC 3339 time like 2026-11-21T16:00:00.247469Z") from None
    if moment.tzinfo is None:
        raise Rejected(f"{name} {text!r} has no time zone; expected UTC with a Z")
    return (moment - EPOCH) // _MICROSECOND


_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - EPOCH


def seconds_text_us(text: str, name: str) -> int:
    """Seconds as decimal text (``1795276800.156000``) as exact microseconds, never through a float."""
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 9:
        raise Rejected(f"{name} {text!r} is not seconds since the epoch like 1795276800.156000")
    return int(whole) * 1_000_000 + int((fraction + "000000")[:6])


@lru_cache(maxsize=4096)
def pair_assets(symbol: str) -> tuple[str, str]:
    """Base and quote of an exchange symbol, normalised (XBT → BTC), cached: symbols repeat endlessly."""
    try:
        return split_symbol(symbol)
    except SymbolError as error:
        raise Rejected(str(error)) from None
