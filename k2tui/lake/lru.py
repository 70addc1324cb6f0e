"""A least-recently-used cache bounded by the total size of what it holds, shared across threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteLru(Generic[K, V]):
    """Values by key, the least recently used dropped once their total size passes `budget` bytes.

    A value larger than the budget (or than `largest`, when given) is not kept: it would push out
    everything else.
    """

    def __init__(self, budget: int, size_of: Callable[[V], int], *, largest: int | None = None) -> None:
        self.budget = budget
        self._size_of = size_of
        self._largest = budget if largest is None else min(budget, largest)
        self._items: OrderedDict[K, V] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        if self._size_of(value) > self._largest:
            return
        with self._lock:
            self._drop(key)
            self._items[key] = value
            self._used += self._size_of(value)
            while self._used > self.budget:
                self._drop(next(iter(self._items)))

    def forget(self, key: K) -> None:
        with self._lock:
            self._drop(key)

    @property
    def used(self) -> int:
        """Bytes held now."""
        with self._lock:
            return self._used

    def _drop(self, key: K) -> None:
        dropped = self._items.pop(key, None)
        if dropped is not None:
            self._used -= self._size_of(dropped)
