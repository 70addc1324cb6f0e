"""The quick streaming validation fails for each thing it exists to catch."""

import msgspec

from k2tui.ingest.stats import StreamSnapshot, StreamState
from k2tui.model.samples import sample_trades
from k2tui.validate.check import CheckStatus
from k2tui.validate.streaming import StreamRunFacts, judge_stream


def _snapshot(**changes: object) -> StreamSnapshot:
    healthy = {
        "name": "binance",
        "source": "live",
        "state": StreamState.STREAMING,
        "connected_since": 0.0,
        "messages": 12,
        "trades": 10,
        "duplicates": 0,
        "parse_errors": 0,
        "reconnects": 0,
        "last_reconnect_reason": "",
        "last_trade": None,
        "last_error": "",
        "gaps": 0,
        "missing_trades": 0,
        "rate_1s": 4.0,
        "rate_10s": 4.0,
        "latency_p50_ms": 20.0,
        "latency_p99_ms": 80.0,
        "connect_seconds": 0.12,
        "first_trade_seconds": 0.8,
    }
    return StreamSnapshot(**(healthy | changes))  # type: ignore[arg-type]


def _facts(**changes: object) -> StreamRunFacts:
    healthy = {
        "exchange": "binance",
        "origin": "live",
        "wanted": 10,
        "limit_s": 30.0,
        "seconds": 3.0,
        "received": list(sample_trades(10)),
        "stream": _snapshot(),
        "errors": [],
        "notes": [],
    }
    return StreamRunFacts(**(healthy | changes))  # type: ignore[arg-type]


def _verdicts(facts: StreamRunFacts) -> dict[str, tuple[CheckStatus, str]]:
    return {r.id.rpartition(".")[2]: (r.status, r.detail) for r in judge_stream(facts)}


def test_a_healthy_stream_passes_every_check() -> None:
    assert {status for status, _ in _verdicts(_facts()).values()} == {CheckStatus.PASS}


def test_a_connection_that_never_opened_fails_with_the_clients_error() -> None:
    stream = _snapshot(connect_seconds=None, last_error="Binance refused the subscription: Invalid symbol")
    status, detail = _verdicts(_facts(stream=stream))["connection"]
    assert status is CheckStatus.FAIL and detail == "Binance refused the subscription: Invalid symbol"


def test_falling_back_to_the_simulator_warns_and_says_why() -> None:
    note = "binance: cannot reach wss://stream.binance.com (timed out); using the simulator instead"
    status, detail = _verdicts(_facts(origin="SIMULATED", notes=[note]))["connection"]
    assert status is CheckStatus.WARN and detail.endswith(note)


def test_too_few_trades_in_the_time_allowed_fail() -> None:
    status, detail = _verdicts(_facts(received=list(sample_trades(3)), seconds=30.0))["trades"]
    assert status is CheckStatus.FAIL and detail == "3 of 10 in 30.0 s (limit 30 s)"


def test_a_trade_breaking_a_v2_rule_fails_compliance_naming_it() -> None:
    trades = list(sample_trades(10))
    trades[4] = msgspec.structs.replace(trades[4], symbol="btc/usdt")
    result = next(r for r in judge_stream(_facts(received=trades)) if r.id.endswith("v2_compliance"))
    assert result.status is CheckStatus.FAIL and result.detail == "90.0% of 10 trades pass every v2 rule"
    assert result.evidence and result.evidence[0].startswith(f"{trades[4].trade_id}: symbol")


def test_silence_fails_the_rate_and_the_first_trade() -> None:
    verdicts = _verdicts(_facts(received=[], stream=_snapshot(messages=0, first_trade_seconds=None)))
    assert verdicts["rate"] == (CheckStatus.FAIL, "0.0 messages/s")
    assert verdicts["first_trade"] == (CheckStatus.FAIL, "no trade arrived")
    assert verdicts["v2_compliance"][0] is CheckStatus.FAIL


def test_a_slow_first_trade_fails_against_the_seeds_limit() -> None:
    status, detail = _verdicts(_facts(stream=_snapshot(first_trade_seconds=12.5)))["first_trade"]
    assert status is CheckStatus.FAIL and detail == "12.50 s (limit 10 s)"


def test_refused_messages_warn() -> None:
    status, detail = _verdicts(_facts(stream=_snapshot(parse_errors=2)))["refused"]
    assert status is CheckStatus.WARN and detail == "2 refused (in the dead-letter queue)"
