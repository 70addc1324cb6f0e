"""Query arguments as users give them, the filter they make at each level, and the values queries return."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from k2tui.lake.filters import (
    QueryArgumentError,
    TradeFilter,
    parse_exchange,
    parse_interval,
    parse_limit,
    parse_symbol,
    parse_time,
)
from k2tui.lake.values import UtcTimestamp, plain_decimal
from k2tui.model.trade import Exchange

MOMENT_US = 1_768_318_245_123_456  # 2026-01-13T15:30:45.123456Z


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-13T15:30:45.123456Z",
        "2026-01-13T16:30:45.123456+01:00",
        "2026-01-13T15:30:45.123456",  # no zone: UTC
        str(MOMENT_US),
        MOMENT_US,
        datetime(2026, 1, 13, 15, 30, 45, 123456, tzinfo=UTC),
        datetime(2026, 1, 13, 15, 30, 45, 123456),
    ],
)
def test_times_are_read_in_every_accepted_form_to_exact_microseconds(value: object) -> None:
    assert parse_time(value, "start") == MOMENT_US


def test_a_date_is_its_utc_midnight() -> None:
    assert parse_time(date(2026, 1, 13), "start") == parse_time("2026-01-13T00:00:00Z", "start")


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", 1_768_318_245, 1_768_318_245_123, True, 1.5])
def test_a_bad_time_names_the_argument_and_the_accepted_form(value: object) -> None:
    with pytest.raises(QueryArgumentError) as caught:
        parse_time(value, "end")
    assert caught.value.argument == "end"
    assert "ISO-8601" in caught.value.accepted and "microseconds" in caught.value.accepted
    assert str(caught.value).startswith("end: expected ")


def test_seconds_or_milliseconds_given_as_microseconds_are_called_out() -> None:
    with pytest.raises(QueryArgumentError, match="looks like seconds or milliseconds"):
        parse_time(1_768_318_245, "start")


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("BTCUSDT", "BTCUSDT"), ("btcusdt", "BTCUSDT"), ("XBT/USD", "BTCUSD"), ("xdg/usd", "DOGEUSD")],
)
def test_symbols_are_normalised_as_the_pipeline_stores_them(raw: str, stored: str) -> None:
    assert parse_symbol(raw) == stored


@pytest.mark.parametrize("raw", ["", "   ", "FOO", "BTC/", 42])
def test_a_symbol_that_no_trade_can_have_is_rejected(raw: object) -> None:
    with pytest.raises(QueryArgumentError, match=r"^symbol: expected a trading pair such as BTCUSDT"):
        parse_symbol(raw)


def test_exchanges_are_case_insensitive_and_listed_when_wrong() -> None:
    assert parse_exchange("kraken") is Exchange.KRAKEN
    with pytest.raises(QueryArgumentError, match="expected one of BINANCE, KRAKEN, got 'ftx'"):
        parse_exchange("ftx")


@pytest.mark.parametrize(("raw", "micros"), [("1s", 10**6), ("5m", 300 * 10**6), ("1H", 3600 * 10**6)])
def test_intervals_become_microseconds(raw: str, micros: int) -> None:
    assert parse_interval(raw) == micros


@pytest.mark.parametrize("raw", ["0m", "1w", "m", "5 m", "32d", "", None])
def test_a_bad_interval_says_the_accepted_form(raw: object) -> None:
    with pytest.raises(QueryArgumentError, match=r"^interval: expected a number and a unit s, m, h or d"):
        parse_interval(raw)


@pytest.mark.parametrize("raw", [0, -1, 1001, True, "ten", 2.0, None])
def test_a_limit_outside_its_range_is_rejected_with_the_range(raw: object) -> None:
    with pytest.raises(QueryArgumentError, match=r"^limit: expected an integer from 1 to 1000"):
        parse_limit(raw, maximum=1000)


def test_a_limit_given_as_text_is_read() -> None:
    assert parse_limit("250", maximum=1000) == 250


def test_end_must_come_after_start() -> None:
    with pytest.raises(QueryArgumentError, match=r"^end: expected a time after start"):
        TradeFilter.parse(start="2026-01-13T15:00:00Z", end="2026-01-13T15:00:00Z")


BOUNDS_LOW = {"symbol": "BTCUSDT", "exchange": "BINANCE", "timestamp": 100}
BOUNDS_HIGH = {"symbol": "SHIBUSDT", "exchange": "BINANCE", "timestamp": 200}


@pytest.mark.parametrize(
    ("flt", "may", "all_"),
    [
        (TradeFilter(), True, True),
        (TradeFilter(symbol="ETHUSDT"), True, False),  # inside the bounds: the file must be read
        (TradeFilter(symbol="AAVEUSDT"), False, False),  # below the lower bound
        (TradeFilter(exchange=Exchange.KRAKEN), False, False),
        (TradeFilter(exchange=Exchange.BINANCE), True, True),
        (TradeFilter(start=201), False, False),
        (TradeFilter(end=100), False, False),  # end is exclusive
        (TradeFilter(start=100, end=201), True, True),
        (TradeFilter(start=150), True, False),
    ],
)
def test_file_bounds_prune_files_and_prove_whole_files(flt: TradeFilter, may: bool, all_: bool) -> None:
    assert flt.may_match(BOUNDS_LOW, BOUNDS_HIGH) is may
    assert flt.matches_all(BOUNDS_LOW, BOUNDS_HIGH) is all_


def test_a_file_without_bounds_is_always_read_and_never_counted_unread() -> None:
    flt = TradeFilter(symbol="BTCUSDT", start=1)
    assert flt.may_match({}, {}) is True
    assert flt.matches_all({}, {}) is False


def test_the_row_mask_applies_every_filter() -> None:
    rows = pa.table(
        {
            "symbol": ["BTCUSDT", "BTCUSDT", "ETHUSDT", "BTCUSDT"],
            "exchange": ["BINANCE", "BINANCE", "BINANCE", "KRAKEN"],
            "timestamp": pa.array([10, 20, 20, 20], pa.int64()),
        }
    )
    flt = TradeFilter(symbol="BTCUSDT", exchange=Exchange.BINANCE, start=15, end=30)
    assert flt.mask(rows).to_pylist() == [False, True, False, False]
    assert TradeFilter().mask(rows) is None


def test_the_row_filter_expression_names_every_filter() -> None:
    text = repr(TradeFilter(symbol="BTCUSDT", exchange=Exchange.KRAKEN, start=1, end=2).expression())
    for part in ("EqualTo", "'symbol'", "BTCUSDT", "'exchange'", "KRAKEN", "GreaterThanOrEqual", "LessThan"):
        assert part in text
    assert repr(TradeFilter().expression()) == "AlwaysTrue()"


def test_timestamps_print_as_the_seed_shows_them_and_keep_the_raw_microseconds() -> None:
    moment = UtcTimestamp.from_micros(MOMENT_US)
    assert str(moment) == "2026-01-13T15:30:45.123456Z"
    assert moment.micros == MOMENT_US
    assert moment == datetime(2026, 1, 13, 15, 30, 45, 123456, tzinfo=UTC)
    assert str(UtcTimestamp.from_micros(MOMENT_US - 123456)) == "2026-01-13T15:30:45.000000Z"
    assert (moment + timedelta(microseconds=1)).micros == MOMENT_US + 1


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("86414.170000000000000000", "86414.17"),
        ("100.000000000000000000", "100"),
        ("0.000000010000000000", "0.00000001"),
        ("12345678901234567890.123456789012345678", "12345678901234567890.123456789012345678"),
    ],
)
def test_decimals_lose_only_the_trailing_zeros_of_the_column_scale(stored: str, shown: str) -> None:
    value = plain_decimal(Decimal(stored))
    assert value == Decimal(stored)
    assert format(value, "f") == shown
