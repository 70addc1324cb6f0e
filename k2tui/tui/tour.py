"""The fault-recovery tour: every fault of the fault menu in turn, each watched, healed, recovered from
and counted, then one verdict over all of them — what a user demos to their team.

Mixed into CockpitApp next to OperatorKeys, whose `run_fault` does one fault end to end.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.worker import Worker

from k2tui.tui.actions import Actions
from k2tui.tui.operator import TOUR_HOLD_S

if TYPE_CHECKING:
    from k2tui.validate.live_faults import Recovery

TOUR_PAUSE_S = 3.0
"""Between two faults, time to read the last one's line in the event log."""


@dataclass(frozen=True)
class TourLeg:
    fault: str
    recovery: Recovery | None
    """None when the fault could not be injected, healed or checked (the event log says why)."""


def tour_verdict(legs: list[TourLeg]) -> tuple[str, bool]:
    """The tour's closing line, and whether everything recovered with exact counts."""
    failed = [leg.fault for leg in legs if leg.recovery is None or not leg.recovery.ok]
    recovered = [leg.recovery for leg in legs if leg.recovery is not None and leg.recovery.ok]
    kafka = sum(r.kafka for r in recovered)
    slowest = max((r.seconds or 0.0 for r in recovered), default=0.0)
    if not failed:
        return (
            f"tour: {len(legs)} faults, all recovered (slowest {slowest:.1f} s); "
            f"{kafka:,} trades in their windows, nothing lost, nothing written twice",
            True,
        )
    return (
        f"tour: {len(legs) - len(failed)} of {len(legs)} faults recovered exactly; not: {', '.join(failed)}",
        False,
    )


class TourKeys:
    """The `T` key and `k2tui demo --tour`: one tour at a time, in a worker."""

    actions: Actions
    tour_worker: Worker[Any] | None = None
    tour_pause_s: float = TOUR_PAUSE_S
    tour_hold_s: float = TOUR_HOLD_S
    """How long each lasting fault is left on to be watched before it is healed."""

    def action_tour(self) -> None:
        if self.tour_worker is not None and not self.tour_worker.is_finished:
            self.log_event("the tour is already running", "yellow")
            return
        self.tour_worker = self.run_worker(self.run_tour(), group="tour", exit_on_error=False)

    async def run_tour(self) -> list[TourLeg]:
        faults = list(self.actions.faults())
        legs: list[TourLeg] = []
        self.log_event(f"tour: {len(faults)} faults, one after another", "bold")
        for number, fault in enumerate(faults, 1):
            self.log_event(f"tour {number}/{len(faults)}: {fault.title}: {fault.effect}", "bold")
            legs.append(TourLeg(fault.title, await self.run_fault(fault.id, self.tour_hold_s)))
            if number < len(faults):
                await asyncio.sleep(self.tour_pause_s)
        line, ok = tour_verdict(legs)
        self.log_event(line, "bold green" if ok else "bold red")
        return legs
