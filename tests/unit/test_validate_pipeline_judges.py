"""The pipeline procedure's verdicts on sequence gaps, latency and the DLQ, each given what breaks it."""

from pathlib import Path

import pyarrow as pa
from aiokafka import TopicPartition

from k2tui.ingest.dlq import DeadLetterQueue
from k2tui.ingest.runner import StreamReport
from k2tui.model.samples import sample_trades
from k2tui.validate import pipeline
from k2tui.validate.check import CheckStatus
from k2tui.validate.pipeline import (
    UNDECODABLE,
    judge_carried_on,
    judge_gaps,
    judge_kafka_dlq,
    judge_latency,
    judge_stream_dlq,
    kafka_gaps,
)
from k2tui.validate.stages import KafkaMessage

TOPIC = "market.crypto.trades.binance"
PLANTED = [(TopicPartition(TOPIC, 2), 283)]


def test_kafka_gaps_counts_jumps_per_series() -> None:
    trades = [t for t in sample_trades(30) if t.symbol == "BTCUSDT"]
    assert kafka_gaps(trades) == {}
    skipped = [trades[0], *trades[2:]]
    assert kafka_gaps(skipped) == {("BINANCE", "BTCUSDT"): 1}


def test_an_injected_gap_must_reach_kafka_the_stream_and_the_consumer() -> None:
    seen = judge_gaps("binance", {"binance": 2}, {("BINANCE", "BTCUSDT"): 1}, 3.0)
    assert seen.status is CheckStatus.PASS
    unseen = judge_gaps("binance", {"binance": 2}, {("BINANCE", "BTCUSDT"): 1}, 0.0)
    assert unseen.status is CheckStatus.FAIL
    assert unseen.detail == "the consumer's k2_sequence_gaps_total did not rise"
    lost = judge_gaps("binance", {"binance": 0}, {}, None)
    assert lost.detail == (
        "the window holds no jump in binance's sequences, so the gap never reached Kafka; "
        "the binance stream counted no gap; the consumer's k2_sequence_gaps_total could not be read"
    )
    assert judge_gaps(None, {}, {}, 0.0).status is CheckStatus.WARN


def test_latency_over_the_limit_or_unaccounted_fails() -> None:
    assert judge_latency([400_000, 600_000, 900_000], 0, 10.0).status is CheckStatus.PASS
    slow = judge_latency([400_000, 12_000_000], 0, 10.0)
    assert slow.status is CheckStatus.FAIL and "p99 12000.0 ms" in slow.detail
    unknown = judge_latency([400_000], 2, 10.0)
    assert unknown.status is CheckStatus.FAIL and unknown.detail.endswith(
        "2 trades have no snapshot recording them"
    )


def test_a_malformed_message_missing_from_the_dlq_or_altered_fails(tmp_path: Path) -> None:
    expected = [("binance", '{"e":"trade","p":"-1"}'), ("kraken", '{"channel":"trade","data":[]}')]
    binance = DeadLetterQueue(tmp_path, "stream-binance")
    kraken = DeadLetterQueue(tmp_path, "stream-kraken")
    letters = [
        binance.put("price: must be positive", expected[0][1], error_type="ValidationError"),
        kraken.put("no trades", expected[1][1] + " ", error_type="ParseError"),
    ]
    result = judge_stream_dlq("p", expected, letters)
    assert result.status is CheckStatus.FAIL
    assert (
        result.detail.startswith("1 of 2 injected messages in the DLQ")
        and "not there: kraken" in result.detail
    )
    letters.append(kraken.put("no trades", expected[1][1], error_type="ParseError"))
    assert judge_stream_dlq("p", expected, letters).status is CheckStatus.PASS
    assert judge_stream_dlq("p", None, []).status is CheckStatus.SKIP


def test_the_planted_payload_must_be_in_the_dlq_with_its_bytes(tmp_path: Path) -> None:
    consumer = DeadLetterQueue(tmp_path, "consumer")
    absent = judge_kafka_dlq("p", PLANTED, [])
    assert (absent.status, absent.detail) == (CheckStatus.FAIL, f"no DLQ entry for {TOPIC}[2]@283")
    altered = consumer.put("bad_magic", UNDECODABLE[:-1], topic=TOPIC, partition=2, offset=283)
    assert judge_kafka_dlq("p", PLANTED, [altered]).detail.endswith("holds other bytes than were produced")
    kept = consumer.put(
        "bad_magic: first byte",
        UNDECODABLE,
        error_type="WireFormatError",
        topic=TOPIC,
        partition=2,
        offset=283,
    )
    assert judge_kafka_dlq("p", PLANTED, [kept]).status is CheckStatus.PASS


def test_the_pipeline_must_carry_on_after_bad_input() -> None:
    trade = next(iter(sample_trades(1)))
    planted = KafkaMessage(TOPIC, 2, 283, b"BTCUSDT", UNDECODABLE, None, "does not decode (bad_magic)")
    good = KafkaMessage(TOPIC, 2, 284, b"BTCUSDT", b"", trade, None)
    fine = StreamReport(streams=[], producer=None, seconds=4.0, trades=100)
    assert judge_carried_on("p", fine, 40, [planted, good], PLANTED).status is CheckStatus.PASS
    other = KafkaMessage(TOPIC, 1, 7, b"X", b"\0", None, "breaks the v2 rules: price: must be positive")
    result = judge_carried_on("p", fine, 40, [planted, good, other], PLANTED)
    assert result.status is CheckStatus.FAIL and f"first {TOPIC}[1]@7: breaks the v2 rules" in result.detail
    stopped = StreamReport(streams=[], producer=None, seconds=4.0, trades=10, errors=["ConnectionClosed"])
    assert judge_carried_on("p", stopped, 0, [planted], PLANTED).detail == (
        "the streams failed: ConnectionClosed; no trade arrived after the bad input"
    )


def test_a_kafka_window_read_short_of_its_offsets_fails_naming_the_ranges() -> None:
    tp = TopicPartition("market.crypto.trades.binance", 0)
    window = pipeline._Window(starts={tp: 10}, ends={tp: 13})
    trade = next(sample_trades(1))
    window.messages = [KafkaMessage(tp.topic, 0, 10, b"BTCUSDT", b"", trade, None)]
    result = pipeline._window_check(window)
    assert result.status is CheckStatus.FAIL and result.detail == "1 of 3 messages read from 1 partitions"
    assert result.evidence == ["market.crypto.trades.binance[0] offsets 10..12"]


def test_no_lake_row_for_the_window_fails() -> None:
    empty = pa.table({"message_id": pa.array([], pa.string())})
    result = pipeline._lake_read_check(empty, pipeline._Window(), 0.2)
    assert result.status is CheckStatus.FAIL and result.detail.startswith("0 rows for 0 message ids")
