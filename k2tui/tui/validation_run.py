"""One validation run as the cockpit follows it: each step's state, the checks so far, the verdict.

Built from the procedure's progress events alone, so the screen that shows it can be closed and opened
again at any moment (the run goes on without it). Nothing here imports Textual.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from k2tui.validate.check import CheckResult, CheckStatus
from k2tui.validate.procedure import (
    ProcedureFinished,
    ProcedureReport,
    ProcedureStarted,
    ProgressEvent,
    StepFinished,
    StepProgress,
    StepStarted,
)


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class RunState(StrEnum):
    RUNNING = "running"
    CANCELLING = "cancelling"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    CRASHED = "crashed"


@dataclass
class StepLine:
    title: str
    state: StepState = StepState.PENDING
    detail: str = ""
    fraction: float | None = None
    seconds: float | None = None


@dataclass
class ValidationRun:
    name: str
    title: str = ""
    state: RunState = RunState.RUNNING
    steps: list[StepLine] = field(default_factory=list)
    finished: dict[int, tuple[CheckResult, ...]] = field(default_factory=dict)
    """Each finished step's checks, by step index."""
    report: ProcedureReport | None = None
    error: str = ""

    def apply(self, event: ProgressEvent) -> None:
        match event:
            case ProcedureStarted():
                self.title = event.title
                self.steps = [StepLine(title) for title in event.steps]
            case StepStarted() if event.index < len(self.steps):
                if self.steps[event.index].state is StepState.PENDING:
                    self.steps[event.index].state = StepState.RUNNING
            case StepProgress() if event.index < len(self.steps):
                self.steps[event.index].detail = event.detail
                self.steps[event.index].fraction = event.fraction
            case StepFinished() if event.index < len(self.steps):
                line = self.steps[event.index]
                line.state = step_state(event.report.results)
                line.seconds = event.report.seconds
                line.detail = ""
                self.finished[event.index] = event.report.results
            case ProcedureFinished():
                self.finish(event.report)

    def finish(self, report: ProcedureReport) -> None:
        self.report = report
        self.title = report.title
        self.state = RunState.FINISHED

    @property
    def results(self) -> list[CheckResult]:
        if self.report is not None:
            return self.report.results
        return [result for index in sorted(self.finished) for result in self.finished[index]]

    @property
    def done_steps(self) -> int:
        return sum(line.state not in (StepState.PENDING, StepState.RUNNING) for line in self.steps)

    def verdict(self) -> str:
        """'validate consumer: 25 passed, 0 failed in 14.2 s' (with warnings and skips when there are)."""
        counts = Counter(result.status for result in self.results)
        parts = [f"{counts[CheckStatus.PASS]} passed", f"{counts[CheckStatus.FAIL]} failed"]
        if counts[CheckStatus.WARN]:
            parts.append(
                f"{counts[CheckStatus.WARN]} warning" + ("s" if counts[CheckStatus.WARN] > 1 else "")
            )
        if counts[CheckStatus.SKIP]:
            parts.append(f"{counts[CheckStatus.SKIP]} skipped")
        head = f"validate {self.name}: "
        if self.state is RunState.CANCELLED:
            return head + f"cancelled after {self.done_steps} of {len(self.steps)} steps; " + ", ".join(parts)
        if self.state is RunState.CRASHED:
            return head + f"could not run: {self.error}"
        seconds = f" in {self.report.seconds:.1f} s" if self.report is not None else ""
        return head + ", ".join(parts) + seconds

    @property
    def passed(self) -> bool:
        return self.state is RunState.FINISHED and not any(r.status is CheckStatus.FAIL for r in self.results)


def step_state(results: tuple[CheckResult, ...]) -> StepState:
    statuses = {result.status for result in results}
    if CheckStatus.FAIL in statuses:
        return StepState.FAIL
    if statuses and statuses <= {CheckStatus.SKIP}:
        return StepState.SKIP
    if CheckStatus.WARN in statuses:
        return StepState.WARN
    return StepState.PASS
