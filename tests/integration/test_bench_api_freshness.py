"""`k2tui bench api` and `k2tui bench freshness` at small sizes: every row of each table, each measured."""

import math

from click.testing import CliRunner

from k2tui.cli import cli

API_CASES = (
    "load: 200,000 trades in 2 appends",
    "table: data files",
    "cold: first latest-100 BTCUSDT",
    "latest-100 BTCUSDT: p50",
    "latest-100 BTCUSDT: p95",
    "latest-100 BTCUSDT: p99",
    "latest-100, no symbol filter: p50",
    "latest-100, no symbol filter: p99",
    "count of BTCUSDT trades: p50",
    "count of BTCUSDT trades: p99",
)
FRESHNESS = "receipt by the stream client → in GET /v1/trades"
FRESHNESS_CASES = (
    "trades flowing: simulator → stream client → Kafka",
    "trades seen in GET /v1/trades",
    "acked but never seen in the API",
    f"{FRESHNESS}: p50",
    f"{FRESHNESS}: p99",
    f"{FRESHNESS}: max",
    "poll period, 4 symbols a round: mean",
)


def _figures(output: str, cases: tuple[str, ...]) -> dict[str, float]:
    """Case → measured figure, from the rows of the rendered table; every case must have one row."""
    figures = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 7 and cells[1] and cells[1] != "case":
            figures[cells[1]] = float(cells[2].replace(",", ""))
    assert len(figures) == len(cases), output
    return {case: next(v for name, v in figures.items() if name.startswith(case)) for case in cases}


def _bench(*args: str) -> str:
    result = CliRunner().invoke(cli, ["bench", *args], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    return result.output


def test_bench_api_measures_every_row() -> None:
    by_case = _figures(_bench("api", "--rows=200000", "--requests=100"), API_CASES)
    assert all(math.isfinite(v) and v > 0 for v in by_case.values()), by_case
    # Two appends over seven days: a file per exchange and day partition each covers.
    assert by_case["table: data files"] >= 2 * 2
    for case in ("latest-100 BTCUSDT", "latest-100, no symbol filter", "count of BTCUSDT trades"):
        assert by_case[f"{case}: p50"] <= by_case[f"{case}: p99"], by_case


def test_bench_freshness_measures_every_row() -> None:
    output = _bench("freshness", "--duration=5", "--warmup=1")
    by_case = _figures(output, FRESHNESS_CASES)
    never_seen = by_case.pop("acked but never seen in the API")
    assert never_seen == 0, output
    assert all(math.isfinite(v) and v > 0 for v in by_case.values()), by_case
    assert by_case[f"{FRESHNESS}: p50"] <= by_case[f"{FRESHNESS}: p99"] <= by_case[f"{FRESHNESS}: max"]
    assert 100 < by_case["trades flowing: simulator → stream client → Kafka"] < 10_000, output
    assert by_case["poll period, 4 symbols a round: mean"] >= 100  # rounds start 100 ms apart at most
