"""Reading /metrics pages without Prometheus: parsing, rates, quantiles and histogram deltas."""

import math

import pytest

from k2tui.consume.metrics import ConsumerMetrics
from k2tui.stack.metrics import (
    MetricsUnavailableError,
    Sample,
    Scrape,
    bucket_delta,
    histogram_quantile,
    rate,
    scrape,
)
from k2tui.stack.ports import find_free_port


def buckets(counts: dict[str, float], **labels: str) -> list[Sample]:
    return [Sample("h_bucket", {"le": le, **labels}, count) for le, count in counts.items()]


async def test_a_real_consumer_page_is_parsed_into_samples() -> None:
    metrics = ConsumerMetrics()
    metrics.consumed.labels("market.crypto.trades.binance").inc(7)
    metrics.consumed.labels("market.crypto.trades.kraken").inc(5)
    for seconds in (0.03, 0.2, 0.7):
        metrics.write_seconds.observe(seconds)
    port = find_free_port()
    server = metrics.serve(port)
    try:
        page = await scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert page.total("k2_messages_consumed_total") == 12
    assert page.total("k2_messages_consumed_total", topic="market.crypto.trades.kraken") == 5
    assert page.total("k2_iceberg_write_duration_seconds_count") == 3
    inf = page.values("k2_iceberg_write_duration_seconds_bucket", le="+Inf")
    assert [s.value for s in inf] == [3]
    assert page.total("process_resident_memory_bytes") > 10e6
    assert page.total("k2_no_such_metric") is None


async def test_an_unreachable_page_says_where_and_why() -> None:
    url = f"http://127.0.0.1:{find_free_port()}/metrics"
    with pytest.raises(MetricsUnavailableError, match=f"cannot read {url}"):
        await scrape(url)


def test_rate_is_the_counter_increase_per_second_between_scrapes() -> None:
    before = Scrape("u", 100.0, (Sample("c_total", {"t": "a"}, 10), Sample("c_total", {"t": "b"}, 5)))
    after = Scrape("u", 104.0, (Sample("c_total", {"t": "a"}, 30), Sample("c_total", {"t": "b"}, 25)))
    assert rate(before, after, "c_total") == 10.0
    assert rate(before, after, "c_total", t="a") == 5.0
    restarted = Scrape("u", 104.0, (Sample("c_total", {"t": "a"}, 2),))
    assert rate(before, restarted, "c_total") is None
    assert rate(before, after, "missing_total") is None
    assert rate(after, before, "c_total") is None  # no time passed forwards


def test_histogram_quantile_interpolates_as_prometheus_does() -> None:
    cumulative = buckets({"0.1": 10, "0.25": 20, "0.5": 30, "+Inf": 30})
    assert histogram_quantile(0.99, cumulative) == pytest.approx(0.25 + 0.25 * 9.7 / 10)
    assert histogram_quantile(0.5, cumulative) == pytest.approx(0.1 + 0.15 * 5 / 10)
    assert histogram_quantile(0.05, cumulative) == pytest.approx(0.1 * 1.5 / 10)  # the first starts at 0


def test_a_rank_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, buckets({"0.1": 10, "1.0": 12, "+Inf": 20})) == 1.0


def test_no_observations_has_no_quantile() -> None:
    assert histogram_quantile(0.99, []) is None
    assert histogram_quantile(0.99, buckets({"0.1": 0, "+Inf": 0})) is None


def test_series_of_one_histogram_are_summed_per_bound() -> None:
    both = buckets({"0.1": 1, "+Inf": 2}, t="a") + buckets({"0.1": 3, "+Inf": 2}, t="b")
    assert histogram_quantile(0.5, both) == pytest.approx(0.1 * 2 / 4)


def test_bucket_delta_is_what_was_observed_between_scrapes_summed_over_series() -> None:
    def page(taken: float, a: tuple[float, float], b: tuple[float, float]) -> Scrape:
        samples = [
            Sample("h_bucket", {"le": "0.5", "t": "a"}, a[0]),
            Sample("h_bucket", {"le": "+Inf", "t": "a"}, a[1]),
            Sample("h_bucket", {"le": "0.5", "t": "b"}, b[0]),
            Sample("h_bucket", {"le": "+Inf", "t": "b"}, b[1]),
        ]
        return Scrape("u", taken, tuple(samples))

    delta = bucket_delta(page(0, (4, 5), (1, 1)), page(5, (6, 9), (2, 3)), "h")
    assert {s.labels["le"]: s.value for s in delta} == {"0.5": 3, "+Inf": 6}
    assert histogram_quantile(0.5, delta) == pytest.approx(0.5)
    unchanged = bucket_delta(page(0, (4, 5), (1, 1)), page(5, (4, 5), (1, 1)), "h")
    assert histogram_quantile(0.99, unchanged) is None
    assert not math.isnan(sum(s.value for s in unchanged))
