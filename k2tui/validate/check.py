"""One check's verdict, with the values it measured and the evidence behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    status: CheckStatus
    detail: str
    measured: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)


def verdict(ok: bool, *, otherwise: CheckStatus = CheckStatus.FAIL) -> CheckStatus:
    return CheckStatus.PASS if ok else otherwise


def all_hold(results: list[CheckResult]) -> bool:
    """True when nothing failed (warnings and skips are reported, not fatal)."""
    return not any(r.status is CheckStatus.FAIL for r in results)
