"""Retrying what will come back, and not hammering it while it is away.

Each dependency the consumer cannot work without (the lake, the registry) sits behind one
:class:`CircuitBreaker`. A transient failure schedules the next attempt after an exponentially growing,
fully jittered delay; after `threshold` failures in a row the breaker opens, and the first attempt
allowed after the delay is the half-open probe whose outcome closes or re-opens it. The consumer
pauses fetching while a breaker holds work back, so no offset advances past what is written.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

import sqlalchemy.exc
from aiokafka.errors import KafkaError
from pyiceberg.exceptions import CommitFailedException

from k2tui.stack.registry.client import RegistryUnavailableError

TRANSIENT_LAKE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # the object store: refused, reset, timed out, or an S3 5xx (pyarrow raises OSError)
    CommitFailedException,  # other writers kept winning the commit race
    sqlalchemy.exc.OperationalError,  # the SQL catalog's database is locked or unreachable
)
TRANSIENT_KAFKA_ERRORS: tuple[type[BaseException], ...] = (KafkaError, TimeoutError, OSError)
TRANSIENT_REGISTRY_ERRORS: tuple[type[BaseException], ...] = (RegistryUnavailableError,)


class BreakerState(IntEnum):
    """The values of the ``k2_circuit_breaker_state`` gauge."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


def backoff_delay(failures: int, initial: float, ceiling: float) -> float:
    """Full jitter below an exponential cap: spreads retries of many consumers over the whole window."""
    return random.uniform(0, min(ceiling, initial * 2 ** max(0, failures - 1)))


@dataclass
class CircuitBreaker:
    dependency: str
    threshold: int = 3
    initial_delay: float = 0.5
    max_delay: float = 30.0
    on_change: Callable[[CircuitBreaker], None] = field(default=lambda breaker: None, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    retry_at: float = 0.0
    last_error: str = ""
    opened_count: int = 0

    def allows(self) -> bool:
        """Whether an attempt may be made now; the first one after an open spell is the half-open probe."""
        if self.clock() < self.retry_at:
            return False
        if self.state is BreakerState.OPEN:
            self._become(BreakerState.HALF_OPEN)
        return True

    def waiting(self) -> float:
        """Seconds until the next attempt is allowed (0 when it is allowed now)."""
        return max(0.0, self.retry_at - self.clock())

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = 0.0
        if self.state is not BreakerState.CLOSED:
            self._become(BreakerState.CLOSED)

    def failed(self, error: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        self.retry_at = self.clock() + backoff_delay(self.failures, self.initial_delay, self.max_delay)
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.failures >= self.threshold
        ):
            self.opened_count += 1
            self._become(BreakerState.OPEN)

    def _become(self, state: BreakerState) -> None:
        self.state = state
        self.on_change(self)
