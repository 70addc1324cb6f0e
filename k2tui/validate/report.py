"""Procedure reports in the three forms people and machines read: JSON, JUnit XML and Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree

from k2tui.validate.check import CheckResult, CheckStatus
from k2tui.validate.procedure import ProcedureReport

_MARK = {
    CheckStatus.PASS: "✅ pass",
    CheckStatus.FAIL: "❌ fail",
    CheckStatus.WARN: "⚠️ warn",
    CheckStatus.SKIP: "⏭️ skip",
}


def as_json(reports: Sequence[ProcedureReport]) -> str:
    return json.dumps(
        {"passed": all(r.passed for r in reports), "procedures": [_procedure(r) for r in reports]},
        indent=2,
        default=str,
    )


def _procedure(report: ProcedureReport) -> dict[str, Any]:
    return {
        "name": report.name,
        "title": report.title,
        "started": report.started.isoformat(),
        "seconds": round(report.seconds, 3),
        "passed": report.passed,
        "counts": {status.value: report.counts()[status] for status in CheckStatus},
        "steps": [
            {
                "id": step.id,
                "title": step.title,
                "seconds": round(step.seconds, 3),
                "checks": [_check(result) for result in step.results],
            }
            for step in report.steps
        ],
    }


def _check(result: CheckResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "title": result.title,
        "stage": result.stage.value,
        "status": result.status.value,
        "detail": result.detail,
        "measured": result.measured,
        "evidence": result.evidence,
    }


def as_junit(reports: Sequence[ProcedureReport]) -> str:
    """One testsuite per procedure and one testcase per check: CI dashboards show each check."""
    suites = ElementTree.Element("testsuites", name="k2tui validate")
    for report in reports:
        counts = report.counts()
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=report.name,
            tests=str(len(report.results)),
            failures=str(counts[CheckStatus.FAIL]),
            skipped=str(counts[CheckStatus.SKIP]),
            errors="0",
            time=f"{report.seconds:.3f}",
            timestamp=report.started.isoformat(),
        )
        for step in report.steps:
            share = step.seconds / max(1, len(step.results))
            for result in step.results:
                case = ElementTree.SubElement(
                    suite,
                    "testcase",
                    classname=f"{report.name}.{result.stage.value}",
                    name=result.id,
                    time=f"{share:.3f}",
                )
                body = "\n".join([result.detail, *result.evidence])
                if result.status is CheckStatus.FAIL:
                    ElementTree.SubElement(case, "failure", message=result.detail).text = body
                elif result.status is CheckStatus.SKIP:
                    ElementTree.SubElement(case, "skipped", message=result.detail)
                else:
                    ElementTree.SubElement(case, "system-out").text = body
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True)


def as_markdown(reports: Sequence[ProcedureReport]) -> str:
    """For people: a summary table, then each check with its figures and evidence."""
    verdict = "passed" if all(r.passed for r in reports) else "FAILED"
    lines = [
        f"# k2tui validation: {verdict}",
        "",
        "| procedure | result | pass | fail | warn | skip | time |",
    ]
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for report in reports:
        counts = report.counts()
        lines.append(
            f"| {report.title} | {'passed' if report.passed else '**failed**'} | "
            + " | ".join(str(counts[s]) for s in CheckStatus)
            + f" | {report.seconds:.1f} s |"
        )
    for report in reports:
        lines += [
            "",
            f"## {report.title}",
            "",
            f"Started {report.started:%Y-%m-%d %H:%M:%S} UTC, took {report.seconds:.1f} s.",
            "",
        ]
        for step in report.steps:
            lines += [f"### {step.title} ({step.seconds:.1f} s)", ""]
            for result in step.results:
                lines += _markdown_check(result)
            lines.append("")
    return "\n".join(lines) + "\n"


def _markdown_check(result: CheckResult) -> list[str]:
    lines = [
        f"- **{_MARK[result.status]}** {result.title} (`{result.id}`, {result.stage.value}): {result.detail}"
    ]
    if result.measured:
        figures = ", ".join(f"{name} = {value}" for name, value in result.measured.items())
        lines.append(f"  - measured: {figures}")
    if result.evidence:
        lines.append("  - evidence:")
        lines.append("")
        lines.append("    ```")
        lines += [f"    {line}" for line in result.evidence]
        lines.append("    ```")
        lines.append("")
    return lines
