"""One check's verdict, with the values it measured and the evidence behind it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


class Stage(StrEnum):
    """Where in the pipeline a check looks; reports group and the TUI colours by it."""

    STACK = "stack"
    STREAM = "stream"
    KAFKA = "kafka"
    CONSUMER = "consumer"
    ICEBERG = "iceberg"
    QUERY = "query"
    API = "api"
    METRICS = "metrics"
    DLQ = "dlq"
    PIPELINE = "pipeline"
    RECOVERY = "recovery"
    PERFORMANCE = "performance"


@dataclass(frozen=True)
class CheckResult:
    id: str
    """Stable and dotted (`consumer.records_added`): checklists and baselines refer to checks by it."""
    title: str
    status: CheckStatus
    detail: str
    """One line saying what was measured against what was expected."""
    measured: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    """Counts, ids, the query used, log lines: what a person needs to believe or chase the verdict."""
    stage: Stage = Stage.PIPELINE


def make_check(
    stage: Stage,
    check_id: str,
    title: str,
    status: CheckStatus,
    detail: str,
    measured: Mapping[str, Any] | None = None,
    evidence: Sequence[str] = (),
) -> CheckResult:
    """A check of `stage`; each procedure binds its stage once (`partial(make_check, Stage.STREAM)`)."""
    return CheckResult(check_id, title, status, detail, dict(measured or {}), list(evidence), stage=stage)


def verdict(ok: bool, *, otherwise: CheckStatus = CheckStatus.FAIL) -> CheckStatus:
    return CheckStatus.PASS if ok else otherwise


def all_hold(results: list[CheckResult]) -> bool:
    """True when nothing failed (warnings and skips are reported, not fatal)."""
    return not any(r.status is CheckStatus.FAIL for r in results)
