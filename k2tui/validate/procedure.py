"""Procedures: checks run as ordered steps, each step announcing itself so a progress bar can follow.

A step that raises is a failed check carrying the error, not a crash of the run. A `required` step
that fails (a service down, a baseline unreadable) skips the steps after it, each reported as skipped
with the reason; `always` steps (restoring a service the procedure stopped) run regardless, also when
the run is cancelled.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from k2tui.validate.check import CheckResult, CheckStatus, Stage, all_hold


@dataclass(frozen=True)
class ProcedureStarted:
    procedure: str
    title: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class StepStarted:
    procedure: str
    index: int
    total: int
    title: str


@dataclass(frozen=True)
class StepProgress:
    """Within a step: `fraction` of it done (None when unknown) and a short line saying what."""

    procedure: str
    index: int
    total: int
    detail: str
    fraction: float | None


@dataclass(frozen=True)
class StepFinished:
    procedure: str
    index: int
    total: int
    report: StepReport


@dataclass(frozen=True)
class ProcedureFinished:
    report: ProcedureReport


ProgressEvent = ProcedureStarted | StepStarted | StepProgress | StepFinished | ProcedureFinished
ProgressSink = Callable[[ProgressEvent], None]


class StepContext:
    """What a running step may tell the outside world while it works."""

    def __init__(self, sink: ProgressSink, procedure: str, index: int, total: int) -> None:
        self._sink = sink
        self._procedure = procedure
        self._index = index
        self._total = total
        self.last_detail = ""
        """What the step last said it was doing: where it was when it ran out of time."""
        self._fraction: float | None = None

    def progress(self, detail: str, fraction: float | None = None) -> None:
        """Say what the step is doing; without a fraction, the bar stays where the last one put it."""
        self.last_detail = detail
        self._fraction = self._fraction if fraction is None else fraction
        self._sink(StepProgress(self._procedure, self._index, self._total, detail, self._fraction))


StepBody = Callable[[StepContext], Awaitable[list[CheckResult]]]


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    body: StepBody
    stage: Stage = Stage.PIPELINE
    required: bool = False
    """When it fails, the steps after it cannot mean anything and are skipped."""
    always: bool = False
    """Runs even after a required step failed or the run was cancelled (clean-up)."""
    limit: float | None = None
    """Seconds the step may take: past it, it is stopped and fails saying where it was, and the
    procedure goes on, so one stuck wait cannot hold the whole run (and its clean-up) forever."""


@dataclass(frozen=True)
class Procedure:
    name: str
    title: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class StepReport:
    id: str
    title: str
    seconds: float
    results: tuple[CheckResult, ...]


@dataclass(frozen=True)
class ProcedureReport:
    name: str
    title: str
    started: datetime
    seconds: float
    steps: tuple[StepReport, ...]

    @property
    def results(self) -> list[CheckResult]:
        return [result for step in self.steps for result in step.results]

    @property
    def passed(self) -> bool:
        return all_hold(self.results)

    def counts(self) -> Counter[CheckStatus]:
        return Counter(result.status for result in self.results)


def _ignore(event: ProgressEvent) -> None:
    """The default progress sink."""


async def run_procedure(procedure: Procedure, on_event: ProgressSink = _ignore) -> ProcedureReport:
    started = datetime.now(UTC)
    began = time.monotonic()
    total = len(procedure.steps)
    on_event(ProcedureStarted(procedure.name, procedure.title, tuple(s.title for s in procedure.steps)))
    reports: list[StepReport] = []
    blocked = ""
    try:
        for index, step in enumerate(procedure.steps):
            if blocked and not step.always:
                report = _skipped(procedure, step, blocked)
            else:
                report = await _run_step(procedure, step, index, on_event)
                if step.required and not all_hold(list(report.results)) and not blocked:
                    blocked = f"{step.title} failed"
            reports.append(report)
            on_event(StepFinished(procedure.name, index, total, report))
    except asyncio.CancelledError:
        for index, step in enumerate(procedure.steps[len(reports) + 1 :], start=len(reports) + 1):
            if step.always:
                await asyncio.shield(_run_step(procedure, step, index, on_event))
        raise
    report = ProcedureReport(
        procedure.name, procedure.title, started, time.monotonic() - began, tuple(reports)
    )
    on_event(ProcedureFinished(report))
    return report


async def _run_step(procedure: Procedure, step: Step, index: int, sink: ProgressSink) -> StepReport:
    total = len(procedure.steps)
    sink(StepStarted(procedure.name, index, total, step.title))
    began = time.monotonic()
    context = StepContext(sink, procedure.name, index, total)
    limit = asyncio.timeout(step.limit)
    try:
        async with limit:
            results = await step.body(context)
    except Exception as error:
        results = [
            _timed_out(procedure, step, context.last_detail)
            if limit.expired()
            else _crashed(procedure, step, error)
        ]
    return StepReport(step.id, step.title, time.monotonic() - began, tuple(results))


def _crashed(procedure: Procedure, step: Step, error: Exception) -> CheckResult:
    lines = traceback.format_exception(error)
    return CheckResult(
        f"{procedure.name}.{step.id}",
        step.title,
        CheckStatus.FAIL,
        f"the step stopped with {type(error).__name__}: {error}",
        evidence=[line.rstrip() for chunk in lines[-3:] for line in chunk.splitlines()],
        stage=step.stage,
    )


def _timed_out(procedure: Procedure, step: Step, where: str) -> CheckResult:
    return CheckResult(
        f"{procedure.name}.{step.id}",
        step.title,
        CheckStatus.FAIL,
        f"the step did not finish within its {step.limit:g} s and was stopped"
        + (f"; it was at: {where}" if where else ""),
        stage=step.stage,
    )


def _skipped(procedure: Procedure, step: Step, reason: str) -> StepReport:
    result = CheckResult(
        f"{procedure.name}.{step.id}", step.title, CheckStatus.SKIP, f"skipped: {reason}", stage=step.stage
    )
    return StepReport(step.id, step.title, 0.0, (result,))
