import json
from pathlib import Path

import pytest

from k2tui.consume.consumer import ConsumerStats
from k2tui.validate.baseline import Better, Figure, new_baseline, save_baseline
from k2tui.validate.check import CheckResult, CheckStatus
from k2tui.validate.performance import (
    COLD_START,
    LATENCY_P50,
    LATENCY_P99,
    SUSTAINED_THROUGHPUT,
    TX_P99,
    WARM_THROUGHPUT,
    Flush,
    PhaseRun,
    cold_checks,
    grade,
    latency_check,
    regression_check,
    save_check,
    sustained_checks,
    warm_checks,
)


def phase(
    asked: int,
    flushes: list[tuple[float, int, float]],
    *,
    written: int | None = None,
    latencies_ms: list[float] | None = None,
) -> PhaseRun:
    """A hand-made run: started at 0, appends (seconds after the start, messages, TX seconds)."""
    written = asked if written is None else written
    stats = ConsumerStats(consumed=written, written=written)
    return PhaseRun(
        asked,
        180.0,
        0.0,
        stats,
        tuple(Flush(at, messages, tx) for at, messages, tx in flushes),
        tuple(ms / 1000 for ms in ([0.1] * asked if latencies_ms is None else latencies_ms)),
    )


def by_id(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.id: r for r in results}


@pytest.mark.parametrize(
    ("value", "status", "words"),
    [
        (80.0, CheckStatus.FAIL, "sustained throughput 80.0 msg/s, past the seed's hard limit > 100 msg/s"),
        (
            120.0,
            CheckStatus.WARN,
            "120 msg/s, worse than the seed's expected 140–160 msg/s, hard limit > 100",
        ),
        (150.0, CheckStatus.PASS, "150 msg/s, within the seed's expected 140–160 msg/s"),
        (2000.0, CheckStatus.PASS, "2,000 msg/s, better than the seed's expected 140–160 msg/s"),
    ],
)
def test_sustained_throughput_against_the_seeds_limit_and_range(
    value: float, status: CheckStatus, words: str
) -> None:
    graded = grade("sustained throughput", value, SUSTAINED_THROUGHPUT)
    assert graded.status is status
    assert words in graded.sentence


@pytest.mark.parametrize(
    ("name", "value", "reference", "words"),
    [
        ("cold start", 75.0, COLD_START, "cold start 75.0 s, past the seed's hard limit < 60 s"),
        ("sustained Iceberg TX p99", 2500.0, TX_P99, "2,500 ms, past the seed's hard limit < 2,000 ms"),
        ("latency p99", 250.0, LATENCY_P99, "latency p99 250 ms, past the seed's hard limit < 200 ms"),
    ],
)
def test_past_a_hard_limit_fails(name: str, value: float, reference: object, words: str) -> None:
    graded = grade(name, value, reference)  # type: ignore[arg-type]
    assert graded.status is CheckStatus.FAIL
    assert words in graded.sentence


def test_outside_the_expected_range_within_the_limit_warns_with_both_numbers() -> None:
    latency = grade("latency p50", 7.0, LATENCY_P50)
    warm = grade("warm batch throughput p50", 1200.0, WARM_THROUGHPUT)

    assert (latency.status, warm.status) == (CheckStatus.WARN, CheckStatus.WARN)
    assert latency.sentence == "latency p50 7.00 ms, worse than the seed's expected < 5 ms"
    assert (
        warm.sentence
        == "warm batch throughput p50 1,200 msg/s, worse than the seed's expected 1,800–2,500 msg/s"
    )


def test_a_cold_start_over_a_minute_fails_and_names_what_it_timed() -> None:
    run = phase(1000, [(75.0, 500, 1.2), (75.3, 500, 0.2)])

    results, figures = cold_checks(run, 500)

    cold = by_id(results)["performance.cold_start"]
    assert cold.status is CheckStatus.FAIL
    assert "cold start 75.0 s, past the seed's hard limit < 60 s" in cold.detail
    assert "cold start throughput 6.67 msg/s, worse than the seed's expected 15–30 msg/s" in cold.detail
    assert "from opening the table" in cold.detail
    assert by_id(results)["performance.cold_iceberg_tx"].status is CheckStatus.PASS
    assert [f.name for f in figures] == ["cold start", "cold start throughput", "cold first Iceberg TX"]


def test_a_slow_first_transaction_fails() -> None:
    results, _ = cold_checks(phase(500, [(20.0, 500, 2.5)]), 500)
    tx = by_id(results)["performance.cold_iceberg_tx"]
    assert tx.status is CheckStatus.FAIL
    assert "cold first Iceberg TX 2,500 ms, past the seed's hard limit < 2,000 ms" in tx.detail


def test_warm_batches_are_measured_from_the_second_on() -> None:
    # Batch 1 took 10 s (cold); batches 2 to 4: 500 messages in 0.25 s, 0.25 s and 0.5 s.
    run = phase(2000, [(10.0, 500, 1.0), (10.25, 500, 0.19), (10.5, 500, 0.18), (11.0, 500, 2.1)])

    results, figures = warm_checks(run)

    throughput = by_id(results)["performance.warm_throughput"]
    assert throughput.status is CheckStatus.PASS
    assert "warm batch throughput p50 2,000 msg/s, within" in throughput.detail
    assert "batches 2–4" in throughput.detail
    assert "slowest batch 1,000 msg/s" in throughput.detail
    tx = by_id(results)["performance.warm_iceberg_tx"]
    assert tx.status is CheckStatus.FAIL
    assert "warm Iceberg TX p99 2,100 ms, past the seed's hard limit" in tx.detail
    assert {f.name for f in figures} == {
        "warm batch throughput p50",
        "warm Iceberg TX p50",
        "warm Iceberg TX p99",
    }


def test_a_warm_phase_of_one_batch_says_to_ask_for_more() -> None:
    results, figures = warm_checks(phase(500, [(5.0, 500, 0.2)]))
    [result] = results
    assert result.status is CheckStatus.FAIL
    assert "--warm-messages" in result.detail
    assert figures == []


def test_sustained_throughput_below_100_fails() -> None:
    run = phase(10_000, [(12.5 * (i + 1), 1000, 0.15) for i in range(10)])

    results, _ = sustained_checks(run)

    throughput = by_id(results)["performance.sustained_throughput"]
    assert throughput.status is CheckStatus.FAIL
    assert "sustained throughput 80.0 msg/s, past the seed's hard limit > 100 msg/s" in throughput.detail
    assert "10,000 messages in 125.0 s" in throughput.detail


def test_latency_percentiles_and_their_definition() -> None:
    # 1000 messages: most take 0.1 ms, 1% take 300 ms (p99 lands on them).
    run = phase(1000, [(5.0, 1000, 0.2)], latencies_ms=[0.1] * 985 + [300.0] * 15)

    [result], figures = latency_check(run)

    assert result.status is CheckStatus.FAIL
    assert "latency p50 0.10 ms, within the seed's expected < 5 ms" in result.detail
    assert "latency p99 300 ms, past the seed's hard limit < 200 ms" in result.detail
    assert "consume one, process it" in result.detail
    assert [f.name for f in figures] == ["latency p50", "latency p95", "latency p99"]


def test_latency_without_timings_fails_instead_of_crashing() -> None:
    [result], figures = latency_check(phase(500, [(5.0, 500, 0.2)], latencies_ms=[]))
    assert result.status is CheckStatus.FAIL
    assert "no per-message timings were recorded" in result.detail
    assert figures == []


@pytest.mark.parametrize("check", [cold_checks, warm_checks, sustained_checks, latency_check])
def test_a_phase_that_did_not_write_every_message_fails_without_figures(check: object) -> None:
    run = phase(500, [(5.0, 480, 0.2)], written=480)
    results, figures = check(run, 500) if check is cold_checks else check(run)  # type: ignore[operator]
    assert results[0].status is CheckStatus.FAIL
    assert "the consumer wrote 480 of 500 messages" in results[0].detail
    assert "in the 180 s allowed" in results[0].detail
    assert figures == []


FIGURES = [
    Figure("sustained throughput", 1180.0, "msg/s", Better.HIGHER),
    Figure("sustained Iceberg TX p50", 100.0, "ms", Better.LOWER),
]


def test_no_baseline_skips_and_says_how_to_make_one(tmp_path: Path) -> None:
    result = regression_check(FIGURES, tmp_path / "none.json", 0.25)
    assert result.status is CheckStatus.SKIP
    assert result.detail == "no baseline yet: run with --save-baseline"


def test_a_corrupt_baseline_fails_the_regression_check_plainly(tmp_path: Path) -> None:
    path = tmp_path / "local-performance.json"
    path.write_text("{")
    result = regression_check(FIGURES, path, 0.25)
    assert result.status is CheckStatus.FAIL
    assert result.detail.startswith(f"the baseline {path} is not a k2tui performance baseline")


def test_a_regression_fails_naming_each_figure_that_got_worse(tmp_path: Path) -> None:
    path = tmp_path / "local-performance.json"
    save_baseline(new_baseline(FIGURES), path)
    now = [
        Figure("sustained throughput", 812.0, "msg/s", Better.HIGHER),
        Figure("sustained Iceberg TX p50", 160.0, "ms", Better.LOWER),
    ]

    result = regression_check(now, path, 0.25)

    assert result.status is CheckStatus.FAIL
    assert result.detail == (
        "sustained throughput 812 msg/s is 31% below the baseline 1,180 msg/s (tolerance 25%); "
        "sustained Iceberg TX p50 160 ms is 60% above the baseline 100 ms (tolerance 25%)"
    )
    assert result.measured["regressions"] == ["sustained throughput", "sustained Iceberg TX p50"]


def test_figures_within_the_tolerance_pass(tmp_path: Path) -> None:
    path = tmp_path / "local-performance.json"
    save_baseline(new_baseline(FIGURES), path)
    now = [
        Figure("sustained throughput", 1000.0, "msg/s", Better.HIGHER),
        Figure("sustained Iceberg TX p50", 80.0, "ms", Better.LOWER),
    ]

    result = regression_check(now, path, 0.25)

    assert result.status is CheckStatus.PASS
    assert result.detail.startswith("2 figures within 25% of the baseline saved")


def test_a_failed_run_is_not_saved_as_the_baseline(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    result = save_check(FIGURES, ["performance.sustained_throughput"], path)
    assert result.status is CheckStatus.FAIL
    assert "performance.sustained_throughput failed" in result.detail
    assert not path.exists()


def test_a_holding_run_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    result = save_check(FIGURES, [], path)
    assert result.status is CheckStatus.PASS
    assert [f["name"] for f in json.loads(path.read_text())["figures"]] == [f.name for f in FIGURES]
