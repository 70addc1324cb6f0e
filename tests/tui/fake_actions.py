"""A deterministic stand-in for the cockpit's actions: faults, heals, recoveries and one scripted
validation, all answered at once, so Pilot tests and pictures see the same thing on every run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from k2tui.validate.check import CheckResult, CheckStatus, Stage
from k2tui.validate.faults import Fault
from k2tui.validate.live_faults import MENU, Injected, Recovery
from k2tui.validate.procedure import (
    ProcedureFinished,
    ProcedureReport,
    ProcedureStarted,
    ProgressSink,
    StepFinished,
    StepProgress,
    StepReport,
    StepStarted,
)
from k2tui.validate.procedures import PROCEDURES

STARTED = datetime(2026, 1, 13, 15, 30, 45, tzinfo=UTC)
EXACT = Recovery(seconds=6.2, waiting_for="", kafka=1_234, iceberg=1_234, missing=0, duplicated=0)


def _check(
    check_id: str, title: str, detail: str, status: CheckStatus = CheckStatus.PASS, **measured: object
) -> CheckResult:
    return CheckResult(
        f"consumer.{check_id}",
        title,
        status,
        detail,
        dict(measured),
        [f"evidence line for {check_id}", "second line of evidence"],
        stage=Stage.CONSUMER,
    )


STEPS: tuple[tuple[str, float, tuple[CheckResult, ...]], ...] = (
    ("Services running", 0.4, (_check("services", "Services running", "6 services ready", down=[]),)),
    (
        "5,000 known messages through Kafka and the consumer",
        9.1,
        (
            _check("sent", "Every message acknowledged by Kafka", "5000 of 5000 acked", acked=5000),
            _check(
                "records_added",
                "Records added to Iceberg",
                "5000 records added across 10 snapshots",
                records=5000,
                snapshots=10,
            ),
        ),
    ),
    (
        "Queried back through the API",
        3.9,
        (
            _check("query", "Every message found by a query", "5000 of 5000 found", found=5000),
            _check(
                "commit_p99",
                "Iceberg commit p99",
                "commit p99 212 ms, above the 200 ms target",
                CheckStatus.WARN,
                commit_p99_ms=212,
            ),
        ),
    ),
    ("Consumer service restored", 0.8, (_check("restored", "Consumer restored", "consumer running again"),)),
)
"""The scripted procedure: (step title, seconds, its checks); the last step is its clean-up."""
HELD_AT = 1
"""The step the run waits at while `hold` is clear."""


@dataclass
class FakeActions:
    consumer_on: bool = True
    failing: dict[str, Exception] = field(default_factory=dict)
    """Method name → the error it raises instead of answering."""
    recovery: Recovery = EXACT
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    """Clear: the validation waits mid-way at step HELD_AT until it is set; set it to let runs finish."""
    calls: list[str] = field(default_factory=list)
    recovery_gate: asyncio.Event | None = None
    """When given, `recover` waits until it is set (to see the cockpit while it watches a recovery)."""

    def _fail(self, name: str) -> None:
        if name in self.failing:
            raise self.failing[name]

    def faults(self) -> Sequence[Fault]:
        return MENU

    def procedures(self) -> Sequence[tuple[str, str]]:
        return [(name, PROCEDURES[name].summary) for name in ("consumer", "pipeline", "faults")]

    async def toggle_consumer(self) -> str:
        self._fail("toggle_consumer")
        self.consumer_on = not self.consumer_on
        return "consumer is running and ready" if self.consumer_on else "consumer stopped (SIGTERM)"

    async def inject(self, fault: Fault) -> Injected:
        self.calls.append(f"inject {fault.id}")
        self._fail("inject")
        return Injected(fault.id, f"{fault.active} (the fake did it)", {})

    async def heal(self, fault: Fault) -> str:
        self.calls.append(f"heal {fault.id}")
        self._fail("heal")
        return f"{fault.id}: healed"

    async def recover(self, injected: Injected) -> Recovery:
        self.calls.append(f"recover {injected.fault}")
        self._fail("recover")
        if self.recovery_gate is not None:
            await self.recovery_gate.wait()
        return self.recovery

    async def run_validation(self, name: str, on_event: ProgressSink) -> ProcedureReport:
        self.calls.append(f"validate {name}")
        self._fail("run_validation")
        title = "Consumer E2E: known messages through Kafka, the consumer, Iceberg and a query"
        total = len(STEPS)
        on_event(ProcedureStarted(name, title, tuple(step for step, _, _ in STEPS)))
        reports: list[StepReport] = []

        def step(index: int) -> None:
            step_title, seconds, results = STEPS[index]
            on_event(StepStarted(name, index, total, step_title))
            report = StepReport(f"step{index}", step_title, seconds, results)
            reports.append(report)
            on_event(StepFinished(name, index, total, report))

        try:
            for index in range(total - 1):
                if index == HELD_AT:
                    on_event(StepStarted(name, index, total, STEPS[index][0]))
                    on_event(StepProgress(name, index, total, "3,000 of 5,000 messages written", 0.6))
                    await self.hold.wait()
                step(index)
        except asyncio.CancelledError:
            step(total - 1)  # the clean-up step runs also when the run is cancelled
            self.calls.append("clean-up ran")
            raise
        step(total - 1)
        report = ProcedureReport(name, title, STARTED, 14.2, tuple(reports))
        on_event(ProcedureFinished(report))
        return report
