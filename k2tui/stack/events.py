"""What an engine reports happening to the stack's services, for the cockpit's event log."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StackEvent:
    """Something the engine saw happen to one service (a container started, died, was paused...)."""

    time: float
    """Seconds since the epoch."""
    service: str
    action: str
    detail: str = ""

    def describe(self) -> str:
        return f"{self.service} {self.action}{f' ({self.detail})' if self.detail else ''}"
