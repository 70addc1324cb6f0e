"""One measured figure of a benchmark, with the target it is held against."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter


class BenchError(RuntimeError):
    """A run did not do what its figures would claim (a wrong answer, a trade lost): no table for it."""


@dataclass(frozen=True)
class BenchRow:
    case: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


def pin_to_one_core() -> int | None:
    """Run on one CPU so per-core rates mean what they say; returns the CPU, or None where unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def best_rate(run: Callable[[], int], *, seconds: float, rounds: int = 3) -> float:
    """Operations per second of `run` (which returns how many it did), best of `rounds` timed rounds."""
    best = 0.0
    for _ in range(rounds):
        done = 0
        start = perf_counter()
        deadline = start + seconds
        while perf_counter() < deadline:
            done += run()
        best = max(best, done / (perf_counter() - start))
    return best
