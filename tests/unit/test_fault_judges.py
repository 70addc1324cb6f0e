"""The fault scenarios' verdicts fail when what they exist to catch happens."""

from collections import Counter

from aiokafka.structs import TopicPartition

from k2tui.stack.process import ExitStatus
from k2tui.validate.check import CheckStatus
from k2tui.validate.fault_names import SCENARIOS, SOAK_FAULTS
from k2tui.validate.faults import (
    FAULTS,
    Fault,
    _Observed,
    judge_graceful_stop,
    judge_ingest,
    judge_recovery,
    judge_while_faulted,
)

TP = TopicPartition("market.crypto.trades.binance", 0)


async def _noop(env):  # type: ignore[no-untyped-def]
    return ""


LAKE_AWAY = Fault("object_store", "Object store away", _noop, _noop, holds_writes=True, opens_breaker="lake")


def test_the_cli_offers_exactly_the_scenarios_there_are() -> None:
    assert tuple(FAULTS) == SCENARIOS and set(SOAK_FAULTS) <= set(FAULTS)


def test_a_trade_neither_in_kafka_nor_in_the_dlq_is_lost_and_named() -> None:
    result = judge_ingest("faults.x", {"a", "b", "c"}, {"a"}, {"b"})
    assert result.status is CheckStatus.FAIL
    assert result.detail.startswith("1 of 3 trades the streams took are neither in Kafka nor in the DLQ")
    assert result.evidence == ["lost: c"]


def test_trades_in_the_dlq_instead_of_kafka_warn_and_say_how_to_send_them() -> None:
    result = judge_ingest("faults.x", {"a", "b"}, {"a"}, {"b"})
    assert result.status is CheckStatus.WARN and "dlq replay --source producer" in result.detail


def test_no_traffic_at_all_proves_nothing() -> None:
    assert judge_ingest("faults.x", set(), set(), set()).status is CheckStatus.FAIL


def test_every_trade_in_kafka_passes() -> None:
    assert judge_ingest("faults.x", {"a", "b"}, {"a", "b", "z"}, set()).status is CheckStatus.PASS


def test_no_recovery_within_the_limit_fails() -> None:
    result = judge_recovery("faults.x", "Broker restart", None, 30, ["injected: broker restarted"])
    assert result.status is CheckStatus.FAIL
    assert result.detail == "not recovered within 30 s of the heal: the lake is still behind Kafka"
    assert judge_recovery("faults.x", "Broker restart", 2.5, 30, []).measured == {"recovery_s": 2.5}


def test_a_breaker_that_never_opened_and_writes_while_away_fail() -> None:
    observed = _Observed(breaker_states=Counter({"lake": 0}), written_before=100, written_after=150)
    observed.committed_before = {TP: 10}
    observed.committed_after = {TP: 60}
    breaker, held = judge_while_faulted("faults.object_store", LAKE_AWAY, observed)
    assert breaker.status is CheckStatus.FAIL and "breaker never opened" in breaker.detail
    assert held.status is CheckStatus.FAIL
    assert held.detail == "50 records written and 1 commits moved while the fault lasted"
    assert held.evidence == ["market.crypto.trades.binance[0]: 10 → 60"]


def test_an_open_breaker_and_nothing_moving_pass() -> None:
    observed = _Observed(breaker_states=Counter({"lake": 1}), written_before=100, written_after=100)
    observed.committed_before = observed.committed_after = {TP: 10}
    assert all(r.status is CheckStatus.PASS for r in judge_while_faulted("f", LAKE_AWAY, observed))


def test_a_sigterm_that_needed_sigkill_or_left_commits_behind_fails() -> None:
    killed = ExitStatus(128 + 9, 0.0)
    result = judge_graceful_stop("f.sigterm", killed, 12.0, 10.0, {TP: 500}, {TP: 400})
    assert result.status is CheckStatus.FAIL
    assert "exited with code 137 (SIGKILL)" in result.detail
    assert "it took 12.0 s to go (limit 10 s)" in result.detail
    assert "1 partitions' Kafka commits do not match the lake's offsets" in result.detail
    clean = judge_graceful_stop("f.sigterm", ExitStatus(0, 0.0), 0.8, 10.0, {TP: 500}, {TP: 500})
    assert clean.status is CheckStatus.PASS
