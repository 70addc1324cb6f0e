"""Python values of the lake's columns, as queries hand them out.

Timestamps come out as :class:`UtcTimestamp`: a real timezone-aware ``datetime`` (it compares, sorts and
does arithmetic like one) that prints the way the seed procedures show it,
``2026-01-13T15:30:45.123456Z``, and still gives the exact int64 microseconds of the v2 record as
``.micros``. Decimals come out exact, without the trailing zeros of the column's scale of 18.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Wide enough for every decimal(38, s) column, so normalising never rounds.
_EXACT = Context(prec=40)
_ONE = Decimal(1)


class UtcTimestamp(datetime):
    """A UTC ``datetime`` whose text is ISO-8601 with microseconds and ``Z``; ``micros`` is the raw value."""

    @classmethod
    def from_micros(cls, micros: int) -> UtcTimestamp:
        moment = EPOCH + timedelta(microseconds=micros)
        return cls(*moment.timetuple()[:6], moment.microsecond, tzinfo=UTC)

    @property
    def micros(self) -> int:
        return micros_of(self)

    def __str__(self) -> str:
        return self.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"

    def __repr__(self) -> str:
        return f"UtcTimestamp({self})"


def micros_of(moment: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime (no float rounding)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def plain_decimal(value: Decimal) -> Decimal:
    """``86414.170000000000000000`` → ``86414.17``; exact, and never in exponent form like ``1E+2``."""
    normal = value.normalize(_EXACT)
    return normal.quantize(_ONE, context=_EXACT) if normal == normal.to_integral_value() else normal
