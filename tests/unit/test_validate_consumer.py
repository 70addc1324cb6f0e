"""The consumer procedure's verdicts, fed the figures of a healthy run and of each way a run goes wrong."""

from dataclasses import replace
from typing import Any

from k2tui.consume.sequence import SequenceEvent, SequenceKind, SequenceTracker
from k2tui.lake.query import trade_row
from k2tui.model.samples import sample_trades
from k2tui.validate.check import CheckResult, CheckStatus
from k2tui.validate.consumer_checks import (
    ConsumeFigures,
    LakeFigures,
    Letter,
    MetricsReading,
    SnapshotView,
    gap_lines,
    judge_backlog,
    judge_baseline,
    judge_consumption,
    judge_dlq,
    judge_lake,
    judge_metrics,
    judge_produced,
    judge_query,
    predicted_snapshots,
)


def by_id(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.id: r for r in results}


def failed(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.id: r for r in results if r.status is CheckStatus.FAIL}


def test_a_written_backlog_passes_and_one_that_never_quietens_or_loses_messages_fails() -> None:
    assert judge_backlog(True, 40, 38, 2, 0, "", 5.2, []).status is CheckStatus.PASS
    endless = judge_backlog(False, 91_000, 91_000, 0, 0, "", 120.0, [])
    assert endless.status is CheckStatus.FAIL
    assert "something keeps producing to the topics" in endless.detail
    lossy = judge_backlog(True, 40, 30, 0, 0, "", 5.0, [])
    assert lossy.status is CheckStatus.FAIL and "10 unaccounted for" in lossy.detail
    broken = judge_backlog(True, 0, 0, 0, 0, "KafkaConnectionError: no broker", 5.0, [])
    assert broken.status is CheckStatus.FAIL and broken.detail.endswith("KafkaConnectionError: no broker")


def test_a_baseline_without_a_record_count_fails() -> None:
    assert judge_baseline(0, 0, []).status is CheckStatus.PASS
    bare = judge_baseline(3, None, [])
    assert bare.status is CheckStatus.FAIL and "no total-records" in bare.detail


def test_messages_kafka_did_not_acknowledge_fail_the_produce_check_with_the_error() -> None:
    assert judge_produced(1000, 1000, 0.2, "", []).status is CheckStatus.PASS
    short = judge_produced(400, 1000, 61.0, "Kafka at 127.0.0.1:9092: KafkaTimeoutError", [])
    assert short.status is CheckStatus.FAIL
    assert short.detail == (
        "400 of 1,000 acknowledged by Kafka (acks=all) in 61.0 s; Kafka at 127.0.0.1:9092: KafkaTimeoutError"
    )


HEALTHY = ConsumeFigures(
    expected=2000,
    consumed=2000,
    written=2000,
    dead_lettered=0,
    duplicates=0,
    errors=0,
    seconds=4.0,
    sustained_rate=2500.0,
    snapshots=5,
    commit_seconds=[0.12, 0.14, 0.13, 0.2, 0.15],
)


def test_a_healthy_run_passes_every_consumption_check_with_the_seed_statistics() -> None:
    results = judge_consumption(HEALTHY)
    assert [r.status for r in results] == [CheckStatus.PASS] * 6
    stats = by_id(results)["consumer.consumed"].measured
    assert stats["messages_consumed"] == 2000 and stats["throughput_msg_s"] == 500.0
    assert stats["commit_p99_ms"] == 200.0


def test_fewer_consumed_than_produced_fails() -> None:
    bad = failed(judge_consumption(replace(HEALTHY, consumed=1990, written=1990)))
    assert set(bad) == {"consumer.consumed"}
    assert "1,990 consumed of the 2,000 produced" in bad["consumer.consumed"].detail


def test_consumed_but_not_written_is_explained_by_the_runs_dead_letters() -> None:
    letters = [Letter("ab12", "wire format: no magic byte", "market.crypto.trades.binance[0]@7", 25)]
    figures = replace(HEALTHY, written=1997, dead_lettered=3, letters=letters)
    bad = failed(judge_consumption(figures))
    assert set(bad) == {"consumer.written"}  # accounted for: not a loss
    assert "3 went to the DLQ" in bad["consumer.written"].detail
    assert bad["consumer.written"].evidence[0] == (
        "DLQ ab12 market.crypto.trades.binance[0]@7: wire format: no magic byte"
    )


def test_a_message_neither_written_nor_dead_lettered_is_a_loss_and_names_the_error() -> None:
    figures = replace(HEALTHY, written=1990, errors=1, last_error="CommitFailedException: boom")
    bad = failed(judge_consumption(figures))
    assert {"consumer.written", "consumer.no_loss", "consumer.errors"} <= set(bad)
    assert "10 of 2,000 consumed are neither written" in bad["consumer.no_loss"].detail
    assert "error: CommitFailedException: boom" in bad["consumer.errors"].evidence


def test_gaps_fail_and_are_listed() -> None:
    gap = SequenceEvent(SequenceKind.SMALL_GAP, "BINANCE", "BTCUSDT", 101, 104)
    bad = failed(judge_consumption(replace(HEALTHY, gaps=1, gap_events=[gap])))
    assert set(bad) == {"consumer.sequence_gaps"}
    assert bad["consumer.sequence_gaps"].evidence == [
        "gap on BINANCE BTCUSDT: expected 101, got 104 (3 missing)"
    ]
    assert (
        by_id(judge_consumption(replace(HEALTHY, gaps=1, expected_gaps=1)))["consumer.sequence_gaps"].status
        is CheckStatus.PASS
    )


def test_the_tracker_keeps_the_gaps_the_diagnosis_lists() -> None:
    tracker = SequenceTracker()
    for sequence in (7, 8, 11, 11, 12, 2000):
        tracker.observe("KRAKEN", "BTCUSD", sequence)
    assert gap_lines(tracker.recent_gaps) == [
        "gap on KRAKEN BTCUSD: expected 9, got 11 (2 missing)",
        "gap on KRAKEN BTCUSD: expected 13, got 2000 (1987 missing)",
    ]


def test_slow_consumption_fails_and_shows_the_commit_times() -> None:
    slow = replace(HEALTHY, sustained_rate=27.7, commit_seconds=[1.5, 1.6, 2.4])
    bad = failed(judge_consumption(slow))
    assert set(bad) == {"consumer.throughput"}
    assert "27.7 msg/s sustained" in bad["consumer.throughput"].detail
    assert bad["consumer.throughput"].evidence == [
        "Iceberg commits: 3, p50 1600 ms, p99 2400 ms, slowest 2400 ms"
    ]
    assert "consumer.throughput" in failed(judge_consumption(replace(HEALTHY, sustained_rate=None)))
    cold = by_id(judge_consumption(replace(slow, cold_start=True)))["consumer.throughput"]
    assert cold.status is CheckStatus.WARN  # one batch is all cold start, which the seed allows to be slow


def snapshot(n: int, added: int, *, by_consumer: bool = True, operation: str = "append") -> SnapshotView:
    return SnapshotView(
        n, operation, {"added-records": str(added), "added-data-files": "2"}, by_consumer=by_consumer
    )


IDS = [f"id-{n}" for n in range(1000)]
LAKE = LakeFigures(
    expected=1000,
    batch_size=300,
    snapshots_before=7,
    snapshots_after=11,
    records_before=5000,
    records_after=6000,
    new_snapshots=[snapshot(1, 300), snapshot(2, 300), snapshot(3, 300), snapshot(4, 100)],
    expired=0,
    id_counts=dict.fromkeys(IDS, 1),
    flush_interval=30.0,
)


def test_the_lake_as_predicted_passes_and_explains_the_prediction() -> None:
    results = by_id(judge_lake(LAKE))
    assert all(r.status is CheckStatus.PASS for r in results.values())
    assert predicted_snapshots(1000, 300) == 4
    assert "ceil(1,000/300) = 4 appends" in results["consumer.snapshots"].evidence[0]


def test_deleted_rows_fail_records_and_ids_naming_the_missing() -> None:
    counts = dict.fromkeys(IDS, 1) | {"id-3": 0, "id-9": 0}
    deleted = snapshot(5, 0, by_consumer=False, operation="delete")
    figures = replace(
        LAKE, records_after=5998, id_counts=counts, new_snapshots=[*LAKE.new_snapshots, deleted]
    )
    bad = failed(judge_lake(figures))
    assert set(bad) == {
        "consumer.records",
        "consumer.message_ids",
        "consumer.snapshots",
    }
    assert "+998 records, +1,000 expected" in bad["consumer.records"].detail
    assert bad["consumer.message_ids"].evidence == ["missing: id-3", "missing: id-9"]
    assert "1 by anything else" in bad["consumer.snapshots"].evidence[1]


def test_a_batch_written_twice_fails_naming_the_doubled_ids() -> None:
    counts = dict.fromkeys(IDS, 1) | {"id-1": 2}
    again = snapshot(5, 1, by_consumer=False)
    figures = replace(LAKE, records_after=6001, id_counts=counts, new_snapshots=[*LAKE.new_snapshots, again])
    bad = failed(judge_lake(figures))
    assert set(bad) == {
        "consumer.records",
        "consumer.message_ids",
        "consumer.snapshots",
        "consumer.snapshot_summaries",
    }
    assert bad["consumer.message_ids"].evidence == ["doubled: id-1 (2 times)"]
    assert "added-records sum to 1,001, 1,000 expected" in bad["consumer.snapshot_summaries"].detail


def test_a_summary_without_added_records_fails() -> None:
    bare = SnapshotView(4, "append", {"added-data-files": "1"}, by_consumer=True)
    figures = replace(LAKE, new_snapshots=[*LAKE.new_snapshots[:3], bare])
    bad = failed(judge_lake(figures))
    assert set(bad) == {"consumer.snapshot_summaries"}
    assert bad["consumer.snapshot_summaries"].evidence == [
        "snapshot 4 (append): added-records ?, added-data-files 1"
    ]


def test_a_table_whose_summary_states_no_total_records_fails_the_records_check() -> None:
    bad = failed(judge_lake(replace(LAKE, records_after=None)))
    assert set(bad) == {"consumer.records"}
    assert bad["consumer.records"].detail == "the current snapshot's summary states no total-records"


def query_rows(count: int) -> tuple[list[dict[str, Any]], list[str]]:
    trades = sorted(sample_trades(count, seed=3), key=lambda t: -t.timestamp)
    rows = [
        trade_row({f: getattr(t, f) for f in t.__struct_fields__} | {"exchange": t.exchange.value})
        for t in trades
    ]
    return rows, [t.message_id for t in trades]


def test_the_expected_rows_newest_first_with_every_field_typed_pass() -> None:
    rows, ids = query_rows(20)
    results = judge_query(rows, ids, "BTCUSDT", "the query")
    assert [r.status for r in results] == [CheckStatus.PASS] * 4


def test_query_rows_missing_out_of_order_untyped_or_invalid_fail() -> None:
    rows, ids = query_rows(20)
    assert failed(judge_query(rows[:-1], ids, "BTCUSDT", "q")).keys() == {"consumer.query_rows"}
    swapped = [rows[1], rows[0], *rows[2:]]
    assert failed(judge_query(swapped, ids, "BTCUSDT", "q")).keys() == {"consumer.query_order"}
    lacking = [{k: v for k, v in rows[0].items() if k != "side"}, *rows[1:]]
    assert (
        "row 0: no side"
        in failed(judge_query(lacking, ids, "BTCUSDT", "q"))["consumer.query_fields"].evidence
    )
    floated = [rows[0] | {"price": float(rows[0]["price"])}, *rows[1:]]
    bad = failed(judge_query(floated, ids, "BTCUSDT", "q"))
    assert bad["consumer.query_types"].evidence[0] == "row 0: price is float, expected Decimal"
    negative = [rows[0] | {"quantity": -rows[0]["quantity"]}, *rows[1:]]
    bad = failed(judge_query(negative, ids, "BTCUSDT", "q"))
    assert "row 0: quantity" in bad["consumer.query_types"].evidence[0]


GOOD_METRICS = MetricsReading("Prometheus", 800.0, 0.25, 320e6, 5.0, 2000.0, {"throughput": "rate(...)"})


def test_metrics_within_thresholds_pass_and_say_their_source() -> None:
    results = judge_metrics(GOOD_METRICS, 400, 5, 2000)
    assert [r.status for r in results] == [CheckStatus.PASS] * 4
    assert results[0].evidence == ["source: Prometheus", "rate(...)"]


def test_metrics_over_threshold_or_missing_fail() -> None:
    over = MetricsReading("scrapes", 80.0, 2.5, 600e6, 10.0, 2000.0)
    bad = failed(judge_metrics(over, 400, 5, 2000))
    assert set(bad) == {
        "consumer.metrics_throughput",
        "consumer.metrics_write_p99",
        "consumer.metrics_memory",
        "consumer.metrics_batch_size",
    }
    assert bad["consumer.metrics_write_p99"].detail == "2500 ms, under 2 s expected"
    assert bad["consumer.metrics_memory"].detail.startswith("600 MB resident")
    assert "200.0 records a batch on average; 400 configured" in bad["consumer.metrics_batch_size"].detail
    one_batch = by_id(judge_metrics(over, 2000, 1, 2000))["consumer.metrics_throughput"]
    assert one_batch.status is CheckStatus.WARN
    absent = MetricsReading("nothing", None, None, None, None, None)
    assert len(failed(judge_metrics(absent, 400, 5, 2000))) == 4


def test_dlq_empty_or_complete_entries_pass_and_faulty_ones_fail() -> None:
    assert judge_dlq([], []).status is CheckStatus.PASS
    good = Letter("aa", "wire format: unknown schema id 9", "t[0]@1", 12)
    assert judge_dlq([good], []).status is CheckStatus.PASS
    result = judge_dlq([good, Letter("bb", " ", "t[0]@2", 12), Letter("cc", "why", "t[0]@3", None)], [])
    assert result.status is CheckStatus.FAIL
    assert result.evidence[:2] == ["bb: no reason", "cc: original message not kept"]
    torn = judge_dlq([], ["/tmp/dlq/consumer-20261122.jsonl:4: Object missing required field `raw_base64`"])
    assert torn.status is CheckStatus.FAIL and torn.evidence[0].startswith("unreadable entry /tmp/dlq")
