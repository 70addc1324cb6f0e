"""Kafka → Iceberg → API consistency on hand-made stages: each break names the stage and the ids."""

from collections import Counter

import msgspec

from k2tui.model.samples import sample_trades
from k2tui.validate.check import CheckStatus, Stage
from k2tui.validate.consistency import consistency_checks

TRADES = list(sample_trades(40))
IDS = Counter(t.message_id for t in TRADES)


def by_id(results):  # type: ignore[no-untyped-def]
    return {r.id.rsplit(".", 1)[1]: r for r in results}


def test_exact_stages_pass_every_check() -> None:
    results = by_id(consistency_checks("p", TRADES, Counter(IDS), Counter(IDS)))
    assert {name: r.status for name, r in results.items()} == dict.fromkeys(
        ("counts", "duplicates", "missing", "sequences"), CheckStatus.PASS
    )
    assert results["counts"].detail == "kafka 40 = iceberg 40 = api 40"


def test_rows_deleted_from_the_lake_are_named_as_lost_by_iceberg() -> None:
    lost = [TRADES[3].message_id, TRADES[17].message_id]
    lake = Counter({i: n for i, n in IDS.items() if i not in lost})
    results = by_id(consistency_checks("p", TRADES, lake, Counter(lake)))
    missing = results["missing"]
    assert missing.status is CheckStatus.FAIL
    assert missing.stage is Stage.ICEBERG
    assert missing.detail.startswith("iceberg lost 2: ")
    assert all(i in missing.detail for i in lost)
    assert results["counts"].status is CheckStatus.FAIL
    assert "kafka 40, iceberg 38, api 38" in results["counts"].detail
    sequences = results["sequences"]
    assert sequences.status is CheckStatus.FAIL
    assert str(TRADES[3].sequence_number) in " ".join(sequences.evidence)


def test_ids_the_api_drops_are_blamed_on_the_api_not_the_lake() -> None:
    api = Counter(IDS)
    del api[TRADES[0].message_id]
    missing = by_id(consistency_checks("p", TRADES, Counter(IDS), api))["missing"]
    assert missing.status is CheckStatus.FAIL
    assert missing.stage is Stage.API
    assert missing.evidence == [f"api lost 1: {TRADES[0].message_id} that iceberg had"]


def test_a_batch_appended_twice_is_named_as_doubled_by_iceberg() -> None:
    doubled = [t.message_id for t in TRADES[5:8]]
    lake = Counter(IDS) + Counter(doubled)
    results = by_id(consistency_checks("p", TRADES, lake))
    duplicates = results["duplicates"]
    assert duplicates.status is CheckStatus.FAIL
    assert duplicates.stage is Stage.ICEBERG
    assert "iceberg doubled 3: " in duplicates.detail and "(3 extra rows)" in duplicates.detail
    assert all(i in duplicates.detail for i in doubled)
    assert results["counts"].detail.startswith("kafka 40, iceberg 43: counts differ")
    assert results["sequences"].status is CheckStatus.FAIL
    assert "holds sequence numbers twice" in results["sequences"].detail


def test_a_producer_resend_in_kafka_is_not_a_duplicate() -> None:
    results = by_id(consistency_checks("p", [*TRADES, TRADES[0]], Counter(IDS)))
    assert all(r.status is CheckStatus.PASS for r in results.values())
    assert results["counts"].evidence == [
        "kafka holds 1 resent copies (same message id), dropped by the consumer"
    ]


def test_one_exchange_trade_under_two_message_ids_fails_the_sequence_check_at_kafka() -> None:
    twin = msgspec.structs.replace(TRADES[0], message_id="00000000-0000-4000-8000-000000000000")
    trades = [*TRADES, twin]
    ids = Counter(t.message_id for t in trades)
    sequences = by_id(consistency_checks("p", trades, ids))["sequences"]
    assert sequences.status is CheckStatus.FAIL
    assert sequences.stage is Stage.KAFKA
    assert f"one exchange trade under two message ids, 1: {TRADES[0].sequence_number}" in sequences.detail


def test_an_empty_window_cannot_pass() -> None:
    counts = by_id(consistency_checks("p", [], Counter(), Counter()))["counts"]
    assert counts.status is CheckStatus.FAIL
    assert counts.detail.endswith("no trades")
