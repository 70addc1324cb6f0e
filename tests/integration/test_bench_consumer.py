"""`k2tui bench consumer` on a small preload: every row of its table, each with a measured figure."""

import math

from click.testing import CliRunner

from k2tui.cli import cli

CASES = (
    "preload: encode 10,000 v2 trades",
    "preload: produce to Kafka, 3 partitions",
    "ceiling: aiokafka consume + Avro decode, 10,000 msgs",
    "(a) seed, 500 rows or 1 s: Kafka → Iceberg, 2,500 msgs",
    "(a) seed: commit p50",
    "(a) seed: commit p99",
    "(a) seed: consumer peak RSS",
    "(b) tuned, 4,000 rows or 2 s: Kafka → Iceberg, 10,000 msgs",
    "(b) tuned: commit p50",
    "(b) tuned: commit p99",
    "(b) tuned: consumer peak RSS",
    "(b) as a share of the ceiling",
)


def _figures(output: str) -> dict[str, float]:
    """Case → measured figure, from the rows of the rendered table."""
    figures = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 7 and cells[1] and cells[1] != "case":
            figures[cells[1]] = float(cells[2].replace(",", ""))
    return figures


def test_bench_consumer_measures_every_row() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            "consumer",
            "--messages=10000",
            "--seed-messages=2500",
            "--batch-size=4000",
            "--flush-interval=2",
        ],
        env={"COLUMNS": "220"},
    )
    assert result.exit_code == 0, result.output
    figures = _figures(result.output)
    assert len(figures) == len(CASES), result.output
    by_case = {case: next(v for name, v in figures.items() if name.startswith(case)) for case in CASES}
    assert all(math.isfinite(v) and v > 0 for v in by_case.values()), by_case
    for mode in ("(a) seed", "(b) tuned"):
        assert by_case[f"{mode}: commit p50"] <= by_case[f"{mode}: commit p99"]
        assert 50 < by_case[f"{mode}: consumer peak RSS"] < 10_000  # MB of a real Python process
    tuned, ceiling = by_case[CASES[7]], by_case[CASES[2]]
    # The share is computed from the two measured rates (the table rounds each of them).
    assert math.isclose(by_case["(b) as a share of the ceiling"], 100 * tuned / ceiling, rel_tol=0.02)
