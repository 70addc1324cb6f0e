"""Reading the pipeline's metrics: PromQL through Prometheus when it answers, else the /metrics pages.

Prometheus keeps history, so rates and quantiles over a window come from it. Without it (not installed,
or down) a reader still has each process's /metrics page: instant values, and rates from two scrapes a
known time apart. Both paths return the same `Sample`s, so callers say which source they used and
carry on.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from k2tui.stack.local_http import local_client

SCRAPE_TIMEOUT_S = 3.0


class MetricsUnavailableError(RuntimeError):
    """Neither Prometheus nor the endpoint answered; the message says which address and why."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """One read of a /metrics page, with the moment it was taken."""

    url: str
    taken: float
    samples: tuple[Sample, ...] = field(default_factory=tuple)

    def values(self, name: str, **labels: str) -> list[Sample]:
        return [
            s for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float | None:
        """The sum over every series of `name` matching `labels`; None when there is none."""
        found = self.values(name, **labels)
        return sum(s.value for s in found) if found else None


async def scrape(url: str) -> Scrape:
    """Read one /metrics page; MetricsUnavailableError with the reason when it cannot be read."""
    try:
        async with local_client(SCRAPE_TIMEOUT_S) as client:
            response = await client.get(url)
            response.raise_for_status()
    except httpx.HTTPError as error:
        raise MetricsUnavailableError(f"cannot read {url}: {error.__class__.__name__}: {error}") from error
    samples = tuple(
        Sample(sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    )
    return Scrape(url, time.monotonic(), samples)


def rate(before: Scrape, after: Scrape, counter: str, **labels: str) -> float | None:
    """Per-second increase of a counter between two scrapes (a restart in between reads as no rate)."""
    first, last = before.total(counter, **labels), after.total(counter, **labels)
    seconds = after.taken - before.taken
    if first is None or last is None or seconds <= 0 or last < first:
        return None
    return (last - first) / seconds


def histogram_quantile(quantile: float, buckets: Iterable[Sample]) -> float | None:
    """What PromQL's histogram_quantile gives for cumulative `_bucket` samples (summed per `le`).

    Linear interpolation inside the bucket holding the rank; a rank in the +Inf bucket returns the
    highest finite bound, as Prometheus does. None when there are no observations.
    """
    per_bound: dict[float, float] = {}
    for sample in buckets:
        bound = float(sample.labels["le"])
        per_bound[bound] = per_bound.get(bound, 0.0) + sample.value
    bounds = sorted(per_bound)
    if not bounds or per_bound[bounds[-1]] == 0:
        return None
    rank = quantile * per_bound[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = per_bound[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def bucket_delta(before: Scrape, after: Scrape, histogram: str) -> list[Sample]:
    """The `_bucket` samples of a histogram observed between two scrapes (after minus before)."""
    earlier: dict[str, float] = {}
    for sample in before.values(f"{histogram}_bucket"):
        earlier[sample.labels["le"]] = earlier.get(sample.labels["le"], 0.0) + sample.value
    grouped: dict[str, float] = {}
    for sample in after.values(f"{histogram}_bucket"):
        grouped[sample.labels["le"]] = grouped.get(sample.labels["le"], 0.0) + sample.value
    return [
        Sample(f"{histogram}_bucket", {"le": le}, value - earlier.get(le, 0.0))
        for le, value in grouped.items()
    ]


class Prometheus:
    """PromQL instant queries through prometheus-api-client, off the event loop."""

    def __init__(self, url: str, timeout_s: float = SCRAPE_TIMEOUT_S, retries: int | None = None) -> None:
        """`retries` None keeps the client's own retrying; a caller that asks again soon passes 0."""
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.url = url
        self._client = PrometheusConnect(
            url=url,
            disable_ssl=True,
            timeout=timeout_s,
            retry=None if retries is None else Retry(total=retries),
        )

    async def ready(self) -> bool:
        try:
            return await asyncio.to_thread(self._client.check_prometheus_connection)
        except Exception:
            return False

    async def query(self, promql: str) -> list[Sample]:
        """The instant vector of `promql`; MetricsUnavailableError when Prometheus does not answer."""
        try:
            result = await asyncio.to_thread(self._client.custom_query, promql)
        except Exception as error:
            raise MetricsUnavailableError(
                f"Prometheus at {self.url} did not answer {promql!r}: {error}"
            ) from error
        return [_vector_sample(item) for item in result]

    async def value(self, promql: str) -> float | None:
        """The single value of `promql` (summed when it has several series); None when empty or NaN."""
        samples = [s for s in await self.query(promql) if not math.isnan(s.value)]
        return sum(s.value for s in samples) if samples else None


def _vector_sample(item: Mapping[str, object]) -> Sample:
    labels = dict(item.get("metric", {}))  # type: ignore[call-overload]
    _, text = item["value"]  # type: ignore[misc]
    return Sample(labels.pop("__name__", ""), labels, float(text))
