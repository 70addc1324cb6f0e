import json
from pathlib import Path

import pytest

from k2tui import __version__
from k2tui.config import resolve_settings
from k2tui.validate.baseline import (
    BaselineError,
    Better,
    Figure,
    Machine,
    compare,
    default_baseline_path,
    load_baseline,
    new_baseline,
    save_baseline,
)

THROUGHPUT = Figure("sustained throughput", 1180.0, "msg/s", Better.HIGHER)
TX = Figure("sustained Iceberg TX p99", 1700.0, "ms", Better.LOWER)
LATENCY = Figure("latency p50", 0.05, "ms", Better.LOWER, noise=0.5)


def moved(figure: Figure, value: float) -> Figure:
    return Figure(figure.name, value, figure.unit, figure.better, figure.noise)


def test_a_saved_baseline_loads_back_with_its_machine_and_version(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "local-performance.json"
    save_baseline(new_baseline([THROUGHPUT, TX]), path)

    loaded = load_baseline(path)

    assert loaded is not None
    assert loaded.figures == (THROUGHPUT, TX)
    assert loaded.k2tui_version == __version__
    assert loaded.machine == Machine.this()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left behind
    assert json.loads(path.read_text())["figures"][0] == {
        "name": "sustained throughput",
        "value": 1180.0,
        "unit": "msg/s",
        "better": "higher",
    }


def test_the_default_path_is_per_environment_under_home(tmp_path: Path) -> None:
    settings = resolve_settings(
        {"home": (tmp_path, "test"), "validate.environment": ("staging", "test")}, env={}
    ).settings
    assert default_baseline_path(settings) == tmp_path / "baselines" / "staging-performance.json"


def test_throughput_below_the_baseline_beyond_the_tolerance_is_named() -> None:
    comparison = compare([moved(THROUGHPUT, 812.0), TX], new_baseline([THROUGHPUT, TX]), 0.25)

    [regression] = comparison.regressions
    assert regression.describe() == (
        "sustained throughput 812 msg/s is 31% below the baseline 1,180 msg/s (tolerance 25%)"
    )


def test_a_time_above_the_baseline_beyond_the_tolerance_is_named() -> None:
    comparison = compare([THROUGHPUT, moved(TX, 2400.0)], new_baseline([THROUGHPUT, TX]), 0.25)

    assert [r.describe() for r in comparison.regressions] == [
        "sustained Iceberg TX p99 2,400 ms is 41% above the baseline 1,700 ms (tolerance 25%)"
    ]


@pytest.mark.parametrize(
    ("throughput", "tx"),
    [(1180.0, 1700.0), (900.0, 2100.0), (5000.0, 100.0)],
    ids=["same", "worse-within-tolerance", "better"],
)
def test_figures_within_the_tolerance_or_better_hold(throughput: float, tx: float) -> None:
    comparison = compare([moved(THROUGHPUT, throughput), moved(TX, tx)], new_baseline([THROUGHPUT, TX]), 0.25)

    assert comparison.regressions == ()
    assert len(comparison.held) == 2


def test_a_tiny_latency_moving_within_its_noise_is_no_regression() -> None:
    baseline = new_baseline([LATENCY])

    assert compare([moved(LATENCY, 0.08)], baseline, 0.25).regressions == ()
    [regression] = compare([moved(LATENCY, 0.6)], baseline, 0.25).regressions
    assert regression.figure.name == "latency p50"


def test_a_figure_the_baseline_lacks_is_listed_not_compared() -> None:
    comparison = compare([THROUGHPUT, LATENCY], new_baseline([THROUGHPUT]), 0.25)

    assert comparison.unmatched == ("latency p50",)
    assert comparison.regressions == ()


def test_no_baseline_file_is_none(tmp_path: Path) -> None:
    assert load_baseline(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    "text",
    ["{not json", json.dumps({"figures": []}), json.dumps({"saved_at": "x", "figures": [{"name": 1}]})],
    ids=["not-json", "missing-keys", "bad-figure"],
)
def test_a_corrupt_baseline_is_one_plain_sentence(tmp_path: Path, text: str) -> None:
    path = tmp_path / "local-performance.json"
    path.write_text(text)

    with pytest.raises(BaselineError) as raised:
        load_baseline(path)

    message = str(raised.value)
    assert message.startswith(f"the baseline {path} is not a k2tui performance baseline")
    assert "--save-baseline" in message
    assert "\n" not in message


def test_an_unreadable_baseline_is_one_plain_sentence(tmp_path: Path) -> None:
    path = tmp_path / "local-performance.json"
    path.mkdir()

    with pytest.raises(BaselineError, match=r"^cannot read the baseline .*local-performance.json: "):
        load_baseline(path)
