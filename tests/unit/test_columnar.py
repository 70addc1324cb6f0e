"""The column checks agree with validate() on every record, and build the same Arrow rows."""

import random
from typing import Any

import pyarrow as pa
import pytest

from k2tui.consume.writer import arrow_trades
from k2tui.model import columnar
from k2tui.model.blocks import V2BlockDecoder
from k2tui.model.columnar import V2_ARROW_SCHEMA, CheckedBatch, check_batch, check_block
from k2tui.model.samples import sample_trades
from k2tui.model.schema import trade_v2_schema
from k2tui.model.trade import TradeV2
from k2tui.model.validation import MAX_TIMESTAMP_US, MIN_TIMESTAMP_US, validate
from k2tui.model.wire import HEADER_SIZE, AvroEncoder

pytestmark = pytest.mark.unit

SKEW = 300_000_000
KRAKEN_V1 = {"trade_id": "KRAKEN-1795276801123456-9f8e7d6c", "sequence_number": None}


def _check_decoded_together(datums: list[dict[str, Any]], **options: Any) -> CheckedBatch:
    """The consumer's usual path: the records encoded, decoded in one call, then checked."""
    encoder = AvroEncoder(1, trade_v2_schema())
    return check_block(V2BlockDecoder().decode([encoder.encode(d)[HEADER_SIZE:] for d in datums]), **options)


CHECKS = pytest.mark.parametrize("check", [check_batch, _check_decoded_together], ids=["records", "block"])


def _mutations(datum: dict[str, Any]) -> list[dict[str, Any]]:
    """Field changes that break a rule, sit just inside it, or that the column checks treat apart."""
    seq, ingested, exchange = datum["sequence_number"] or 0, datum["ingestion_timestamp"], datum["exchange"]
    other = {"BINANCE": "KRAKEN", "KRAKEN": "BINANCE"}[exchange]
    vendor = datum["vendor_data"]
    decimals = [
        "0", "-1", "NaN", "Infinity", "1E+999999", "0.0000000000000000001", "1.0000000000000000000",
        "0" * 40 + "1", "1e-18", "1e-19", "5.", ".5", "+5", " 5", "1_0", "99999999999999999999",
        "100000000000000000000", "1e19", "1e20", "\u0661", "4.6e-05", "4.6E-5", "-0",
        "0.1000000000000000000000",
    ]  # fmt: skip
    changes: list[dict[str, Any]] = [
        {"message_id": value}
        for value in ("", "1234", "x" * 36, datum["message_id"].upper(), datum["message_id"] + "\n")
    ]
    changes += [
        {"trade_id": value}
        for value in (
            f"{exchange}-0{seq}", f"{exchange}-{seq}\n", f"{other}-{seq}", f"{exchange}-{seq + 2}",
            f"{exchange}--{seq}", f"{exchange}-\u0665\u0664", "KRAKEN-1-abc", KRAKEN_V1["trade_id"],
        )
    ]  # fmt: skip
    changes += [KRAKEN_V1, {**KRAKEN_V1, "sequence_number": 7}]
    changes += [{**KRAKEN_V1, "trade_id": KRAKEN_V1["trade_id"][:-1] + end} for end in ("z", "", "-", "\n")]
    changes += [
        {"symbol": value}
        for value in (
            "btcusdt",
            "BTC-USDT",
            "XBTUSD",
            "USDXBT",
            "XDGUSD",
            "A",
            "A" * 21,
            "BTCUSDT\n",
            "ETHBTC",
        )
    ]
    changes += [{"exchange": other}, {"asset_class": "equity"}, {"asset_class": "crypto "}]
    for name in ("timestamp", "ingestion_timestamp"):
        for value in (
            MIN_TIMESTAMP_US - 1,
            MIN_TIMESTAMP_US,
            MAX_TIMESTAMP_US - 1,
            MAX_TIMESTAMP_US,
            17952768001,
        ):
            changes.append({name: value})
    changes += [{"timestamp": ingested + SKEW}, {"timestamp": ingested + SKEW + 1}]
    changes += [{name: value} for name in ("price", "quantity") for value in decimals]
    changes += [{"side": {"BUY": "SELL", "SELL": "BUY"}[datum["side"]]}]
    changes += [{"vendor_data": {k: v for k, v in vendor.items() if k != key}} for key in vendor]
    changes += [
        {"vendor_data": {**vendor, "is_buyer_maker": "yes"}},
        {"vendor_data": {**vendor, "base_asset": "XRP"}},
        {"vendor_data": {**vendor, "extra": "kept"}},
        {"vendor_data": {}},
    ]
    changes += [{"sequence_number": value} for value in (None, -1, 0, 2**63 - 1, (seq + 1) % 2**63)]
    return changes


def _broken_records(count: int, seed: int) -> list[dict[str, Any]]:
    """Sample trades with one to three mutations each, and a share left as they are."""
    chooser = random.Random(seed)
    records = []
    for trade in sample_trades(count, seed=seed):
        datum = trade.to_avro()
        for _ in range(chooser.choice((0, 1, 1, 2, 3))):
            datum = {**datum, **chooser.choice(_mutations(datum))}
        records.append(datum)
    return records


def _expected_table(datums: list[dict[str, Any]]) -> pa.Table:
    valid = [TradeV2.from_avro(d) for d in datums if not validate(d, max_clock_skew_us=SKEW)]
    return arrow_trades(valid, V2_ARROW_SCHEMA)


def _assert_agrees(datums: list[dict[str, Any]], check: Any) -> None:
    checked = check(datums, max_clock_skew_us=SKEW)
    for row, datum in enumerate(datums):
        found = validate(datum, max_clock_skew_us=SKEW)
        assert checked.valid[row] == (not found), (datum, found)
        assert checked.violations.get(row, []) == found
        if found:
            assert checked.datum_at(row) == datum  # what the dead letter shows
    kept = checked.table.filter(pa.array(checked.valid))
    assert kept.equals(_expected_table(datums))


@CHECKS
def test_every_mutation_alone_gets_the_verdict_and_reasons_of_validate(check: Any) -> None:
    base = [t.to_avro() for t in sample_trades(12, seed=5)]
    for datum in base:
        for change in _mutations(datum):
            _assert_agrees([{**datum, **change}], check)


@CHECKS
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_batches_of_mixed_records_agree_with_validate_row_for_row(seed: int, check: Any) -> None:
    datums = _broken_records(3000, seed)
    assert 0 < sum(not validate(d) for d in datums) < len(datums)  # both kinds are in the batch
    _assert_agrees(datums, check)


@CHECKS
def test_valid_records_are_not_checked_again_row_by_row(monkeypatch: pytest.MonkeyPatch, check: Any) -> None:
    calls: list[object] = []
    monkeypatch.setattr(
        columnar, "validate", lambda datum, **kw: calls.append(datum) or validate(datum, **kw)
    )
    datums = [t.to_avro() for t in sample_trades(500, seed=8)]
    datums.append({**datums[0], **KRAKEN_V1, "exchange": "KRAKEN"})
    checked = check(datums)
    assert sum(checked.valid) == 500 and len(calls) == 1  # only the broken one


@CHECKS
def test_a_record_stricter_columns_refuse_is_accepted_after_validate(check: Any) -> None:
    datum = next(t for t in sample_trades(20, seed=9) if t.sequence_number).to_avro()
    zeros = {**datum, "trade_id": f"{datum['exchange']}-00{datum['sequence_number']}"}
    assert validate(zeros) == []
    checked = check([zeros, datum])
    assert checked.valid == [True, True] and checked.violations == {}
