"""Where ``k2tui consume --crash-at`` kills the consumer; apart so parsing the flag imports no pyarrow.

The consume command chooses Arrow's allocator before pyarrow is imported (consume/memory.py), and click
parses this flag first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CrashPoint(StrEnum):
    """Where ``--crash-at`` SIGKILLs the consumer, for proving recovery at each step of a flush."""

    BEFORE_APPEND = "before-append"
    AFTER_APPEND = "after-append"
    """Between the Iceberg append and the Kafka offset commit."""
    AFTER_COMMIT = "after-commit"


@dataclass(frozen=True)
class CrashPlan:
    point: CrashPoint
    flush: int = 1
    """Which flush with records to crash at (1 = the first)."""
