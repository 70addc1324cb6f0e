"""The v2 rules over a whole batch at once, as Arrow columns, for records the v2 Avro schema has typed.

Checking and converting row by row cost the consumer about 17 µs a message (`validate()`, the
TradeV2, then Arrow); over columns it is a few vectorised calls. The column checks are a filter in
front of `validate()`, which stays the one authority: a row they pass is one `validate()` passes
(tests/unit/test_columnar.py compares the two on thousands of broken records), and every row they
fail is checked again by `validate()`, for its reasons or, where the columns were stricter than the
rules (a trade id with leading zeros, a decimal Arrow cannot parse), to be accepted after all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from k2tui.model.blocks import DecodedBlock
from k2tui.model.symbols import ASSET_ALIASES
from k2tui.model.trade import ASSET_CLASS, VENDOR_KEYS, Exchange, Side
from k2tui.model.validation import (
    DECIMAL_TEXT,
    DEFAULT_MAX_CLOCK_SKEW_US,
    FIELDS,
    KRAKEN_V1_HASH,
    MAX_TIMESTAMP_US,
    MIN_TIMESTAMP_US,
    SYMBOL_PATTERN,
    UUID_PATTERN,
    Violation,
    decimal_problem,
    validate,
)

TEXT = pa.large_string()
TIMESTAMP = pa.timestamp("us", tz="UTC")
DECIMAL = pa.decimal128(38, 18)
V2_ARROW_SCHEMA = pa.schema(
    [
        pa.field("message_id", TEXT, nullable=False),
        pa.field("trade_id", TEXT, nullable=False),
        pa.field("symbol", TEXT, nullable=False),
        pa.field("exchange", TEXT, nullable=False),
        pa.field("asset_class", TEXT, nullable=False),
        pa.field("timestamp", TIMESTAMP, nullable=False),
        pa.field("price", DECIMAL, nullable=False),
        pa.field("quantity", DECIMAL, nullable=False),
        pa.field("side", TEXT, nullable=False),
        pa.field("vendor_data", pa.map_(TEXT, TEXT), nullable=False),
        pa.field("sequence_number", pa.int64()),
        pa.field("ingestion_timestamp", TIMESTAMP, nullable=False),
    ]
)
"""The v2 record as Arrow columns: the lake's column types, without its field ids."""


def _whole(pattern: re.Pattern[str]) -> str:
    """A Python pattern as an RE2 pattern for the whole value (RE2's `$` is the end of the text)."""
    return f"^(?:{pattern.pattern})$"


_UUID = _whole(UUID_PATTERN)
_SYMBOL = _whole(SYMBOL_PATTERN)
_DECIMAL = _whole(DECIMAL_TEXT)
_KRAKEN_V1_ID = _whole(re.compile(f"KRAKEN-[0-9]+{KRAKEN_V1_HASH}"))
_ALIASES = "|".join(ASSET_ALIASES)
_KRAKEN_ALIAS = f"^(?:{_ALIASES})|(?:{_ALIASES})$"
_EXCHANGES = pa.array(list(Exchange), TEXT)
_SIDES = pa.array(list(Side), TEXT)
_TIMESTAMPS = ("timestamp", "ingestion_timestamp")
_DECIMALS = ("price", "quantity")
_ARROW_INPUT = dict.fromkeys(_TIMESTAMPS, pa.int64()) | dict.fromkeys(_DECIMALS, TEXT)
"""Timestamps are checked as the integers they arrive as, decimals as their text; then cast."""
_ZERO = pa.scalar(Decimal(0), DECIMAL)
_VENDOR_KEYS = sorted(frozenset().union(*VENDOR_KEYS.values()))
_FIELDS = list(zip(FIELDS, V2_ARROW_SCHEMA, strict=True))


@dataclass(frozen=True)
class CheckedBatch:
    """The batch as v2 Arrow columns (rows broken beyond conversion hold nulls) and what was refused."""

    table: pa.Table
    violations: dict[int, list[Violation]]
    """The rows `validate()` refused, by position, with everything wrong with each."""
    datum_at: Callable[[int], Mapping[str, Any]]
    """A row as the Avro decoder gives it: what a dead letter shows of a refused one."""

    @functools.cached_property
    def valid(self) -> list[bool]:
        """Each row's verdict, in order: True where nothing was refused."""
        return [row not in self.violations for row in range(self.table.num_rows)]


def check_batch(
    datums: Sequence[Mapping[str, Any]], *, max_clock_skew_us: int = DEFAULT_MAX_CLOCK_SKEW_US
) -> CheckedBatch:
    """Check and convert `datums`, each as the v2 Avro schema decodes it (so of the v2 field types)."""
    values = {name: [datum[name] for datum in datums] for name in FIELDS}
    arrays = {name: pa.array(values[name], _input_type(name, field)) for name, field in _FIELDS}
    return _checked(arrays, values["vendor_data"], datums.__getitem__, max_clock_skew_us)


def check_block(block: DecodedBlock, *, max_clock_skew_us: int = DEFAULT_MAX_CLOCK_SKEW_US) -> CheckedBatch:
    """Check and convert records decoded together into columns (`V2BlockDecoder`)."""
    table = block.table
    arrays = {
        name: table.column(name).combine_chunks().cast(_input_type(name, field)) for name, field in _FIELDS
    }

    def datum_at(row: int) -> dict[str, Any]:
        return {**table.slice(row, 1).to_pylist()[0], "vendor_data": block.vendor_data[row]}

    return _checked(arrays, block.vendor_data, datum_at, max_clock_skew_us)


def _input_type(name: str, field: pa.Field) -> pa.DataType:
    """The column type a field is checked in: timestamps as their integers, decimals as their text."""
    return _ARROW_INPUT.get(name, field.type)


def _checked(
    arrays: dict[str, pa.Array],
    vendor_data: Sequence[Mapping[str, str]],
    datum_at: Callable[[int], Mapping[str, Any]],
    max_clock_skew_us: int,
) -> CheckedBatch:
    checks = [
        pc.match_substring_regex(arrays["message_id"], _UUID),
        pc.is_in(arrays["exchange"], value_set=_EXCHANGES),
        pc.equal(arrays["asset_class"], ASSET_CLASS),
        pc.is_in(arrays["side"], value_set=_SIDES),
        _symbol_passes(arrays["symbol"], arrays["exchange"]),
        _trade_id_passes(arrays["trade_id"], arrays["exchange"], arrays["sequence_number"]),
        _vendor_data_passes(arrays, vendor_data),
        pc.or_kleene(pc.is_null(arrays["sequence_number"]), pc.greater_equal(arrays["sequence_number"], 0)),
        pc.less_equal(pc.subtract(arrays["timestamp"], arrays["ingestion_timestamp"]), max_clock_skew_us),
    ]
    for name in _TIMESTAMPS:
        checks.append(pc.greater_equal(arrays[name], MIN_TIMESTAMP_US))
        checks.append(pc.less(arrays[name], MAX_TIMESTAMP_US))
        arrays[name] = arrays[name].cast(TIMESTAMP)
    for name in _DECIMALS:
        arrays[name], passes = _decimal_column(arrays[name])
        checks.append(passes)
    passed = pc.fill_null(functools.reduce(pc.and_kleene, checks), False).to_pylist()
    violations: dict[int, list[Violation]] = {}
    for row, ok in enumerate(passed):  # a row the columns refuse but validate() passes is kept
        if not ok and (found := validate(datum_at(row), max_clock_skew_us=max_clock_skew_us)):
            violations[row] = found
    table = pa.Table.from_arrays([arrays[name] for name in FIELDS], schema=V2_ARROW_SCHEMA)
    return CheckedBatch(table, violations, datum_at)


def _symbol_passes(symbol: pa.Array, exchange: pa.Array) -> pa.Array:
    kraken_alias = pc.and_kleene(
        pc.equal(exchange, Exchange.KRAKEN.value), pc.match_substring_regex(symbol, _KRAKEN_ALIAS)
    )
    return pc.and_kleene(pc.match_substring_regex(symbol, _SYMBOL), pc.invert(kraken_alias))


def _trade_id_passes(trade_id: pa.Array, exchange: pa.Array, sequence: pa.Array) -> pa.Array:
    """`{exchange}-{sequence_number}`, or a Kraken v1 id with no sequence number; anything else goes
    to `validate()` (which also accepts, say, leading zeros)."""
    sequenced = pc.equal(
        trade_id, pc.binary_join_element_wise(exchange, sequence.cast(TEXT), pa.scalar("-", TEXT))
    )
    kraken_v1 = pc.and_kleene(
        pc.and_kleene(pc.equal(exchange, Exchange.KRAKEN.value), pc.is_null(sequence)),
        pc.match_substring_regex(trade_id, _KRAKEN_V1_ID),
    )
    return pc.or_kleene(pc.fill_null(sequenced, False), kraken_v1)


def _vendor_data_passes(arrays: dict[str, pa.Array], vendor_data: Sequence[Mapping[str, str]]) -> pa.Array:
    # Looked up in Python: Arrow's map_lookup took four times as long.
    keys = {key: pa.array([data.get(key) for data in vendor_data], TEXT) for key in _VENDOR_KEYS}

    def has_all(exchange_keys: frozenset[str]) -> pa.Array:
        return functools.reduce(pc.and_kleene, (pc.is_valid(keys[key]) for key in exchange_keys))

    pair = pc.equal(
        pc.binary_join_element_wise(keys["base_asset"], keys["quote_asset"], pa.scalar("", TEXT)),
        arrays["symbol"],
    )
    maker, side = keys["is_buyer_maker"], arrays["side"]
    taker_matches = pc.or_kleene(
        pc.and_kleene(pc.equal(maker, "true"), pc.equal(side, Side.SELL.value)),
        pc.and_kleene(pc.equal(maker, "false"), pc.equal(side, Side.BUY.value)),
    )
    binance = pc.and_kleene(pc.and_kleene(has_all(VENDOR_KEYS[Exchange.BINANCE]), pair), taker_matches)
    kraken = pc.and_kleene(has_all(VENDOR_KEYS[Exchange.KRAKEN]), pair)
    return pc.if_else(pc.equal(arrays["exchange"], Exchange.BINANCE.value), binance, kraken)


def _decimal_column(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The decimals cast in one call and whether each passes; one Arrow cannot cast is found row by row."""
    plain = pc.match_substring_regex(text, _DECIMAL)
    try:
        decimals = pc.cast(pc.if_else(plain, text, None), DECIMAL)
    except pa.ArrowInvalid:
        exact = [Decimal(t) if decimal_problem(t) is None else None for t in text.to_pylist()]
        decimals = pa.array(exact, DECIMAL)
    return decimals, pc.greater(decimals, _ZERO)
