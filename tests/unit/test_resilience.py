"""The circuit breaker and backoff the consumer puts around the lake and the registry."""

import random

import pytest
import sqlalchemy.exc
from aiokafka.errors import CommitFailedError, KafkaConnectionError
from pyiceberg.exceptions import CommitFailedException

from k2tui.consume.resilience import (
    TRANSIENT_KAFKA_ERRORS,
    TRANSIENT_LAKE_ERRORS,
    TRANSIENT_REGISTRY_ERRORS,
    BreakerState,
    CircuitBreaker,
    backoff_delay,
)
from k2tui.model.wire import WireFormatError
from k2tui.stack.registry.client import RegistryUnavailableError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _breaker(clock: Clock, changes: list[BreakerState] | None = None) -> CircuitBreaker:
    log = changes if changes is not None else []
    return CircuitBreaker(
        "lake",
        threshold=3,
        initial_delay=1.0,
        max_delay=8.0,
        clock=clock,
        on_change=lambda b: log.append(b.state),
    )


def test_a_closed_breaker_allows_and_stays_closed_below_the_threshold(clock: Clock) -> None:
    breaker = _breaker(clock)
    assert breaker.allows()
    breaker.failed(OSError("reset"))
    breaker.failed(OSError("reset"))
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 2


def test_it_opens_at_the_threshold_and_refuses_until_the_delay_has_passed(clock: Clock) -> None:
    changes: list[BreakerState] = []
    breaker = _breaker(clock, changes)
    for _ in range(3):
        clock.now += 10
        breaker.failed(OSError("connection refused"))
    assert breaker.state is BreakerState.OPEN and changes == [BreakerState.OPEN]
    assert breaker.last_error == "OSError: connection refused"
    clock.now = breaker.retry_at - 0.001
    assert not breaker.allows() and breaker.waiting() > 0


def test_the_first_attempt_after_the_delay_is_a_half_open_probe(clock: Clock) -> None:
    changes: list[BreakerState] = []
    breaker = _breaker(clock, changes)
    for _ in range(3):
        breaker.failed(OSError())
    clock.now = breaker.retry_at
    assert breaker.allows() and breaker.state is BreakerState.HALF_OPEN
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0 and breaker.waiting() == 0
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_probe_opens_it_again_with_a_longer_delay_cap(clock: Clock) -> None:
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.failed(OSError())
    clock.now = breaker.retry_at
    breaker.allows()
    breaker.failed(TimeoutError("still down"))
    assert breaker.state is BreakerState.OPEN and breaker.opened_count == 2


def test_backoff_is_jittered_below_an_exponential_cap() -> None:
    random.seed(7)
    for failures, cap in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0)):
        delays = [backoff_delay(failures, 1.0, 8.0) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8 and min(delays) < cap * 0.2, "spread over the whole window"


@pytest.mark.parametrize(
    "error",
    [
        OSError("When uploading part: AWS Error NETWORK_CONNECTION"),
        ConnectionResetError(),
        TimeoutError(),
        CommitFailedException("conflict"),
        sqlalchemy.exc.OperationalError("UPDATE", {}, Exception("database is locked")),
    ],
)
def test_object_store_catalog_and_commit_failures_are_transient_for_the_lake(error: Exception) -> None:
    assert isinstance(error, TRANSIENT_LAKE_ERRORS)


def test_a_broken_message_is_permanent_not_transient() -> None:
    broken = WireFormatError.__new__(WireFormatError)
    assert not isinstance(broken, TRANSIENT_LAKE_ERRORS + TRANSIENT_REGISTRY_ERRORS)
    assert not isinstance(ValueError("bad record"), TRANSIENT_LAKE_ERRORS + TRANSIENT_REGISTRY_ERRORS)


def test_registry_and_kafka_outages_are_transient() -> None:
    assert isinstance(RegistryUnavailableError("down"), TRANSIENT_REGISTRY_ERRORS)
    assert isinstance(KafkaConnectionError(), TRANSIENT_KAFKA_ERRORS)
    assert isinstance(CommitFailedError(), TRANSIENT_KAFKA_ERRORS)
