"""Procedures run their steps in order, report progress, and never hide a failure or a crash."""

import asyncio
import json
from xml.etree import ElementTree

import pytest

from k2tui.validate.check import CheckResult, CheckStatus, Stage
from k2tui.validate.procedure import (
    Procedure,
    ProcedureFinished,
    ProcedureStarted,
    Step,
    StepContext,
    StepFinished,
    StepProgress,
    StepStarted,
    run_procedure,
)
from k2tui.validate.report import as_json, as_junit, as_markdown


def _step(step_id: str, status: CheckStatus, **options: object) -> Step:
    async def body(context: StepContext) -> list[CheckResult]:
        context.progress(f"{step_id} half way", 0.5)
        return [
            CheckResult(f"p.{step_id}", step_id.title(), status, f"{step_id} {status}", {"n": 1}, ["line"])
        ]

    return Step(step_id, step_id.title(), body, **options)  # type: ignore[arg-type]


async def _crash(context: StepContext) -> list[CheckResult]:
    raise ConnectionRefusedError("broker at 127.0.0.1:19092 refused")


async def test_steps_run_in_order_with_progress_events() -> None:
    events: list[object] = []
    procedure = Procedure("p", "Procedure", (_step("one", CheckStatus.PASS), _step("two", CheckStatus.WARN)))
    report = await run_procedure(procedure, events.append)
    kinds = [type(e) for e in events]
    assert kinds == [
        ProcedureStarted,
        StepStarted,
        StepProgress,
        StepFinished,
        StepStarted,
        StepProgress,
        StepFinished,
        ProcedureFinished,
    ]
    assert isinstance(events[2], StepProgress) and events[2].fraction == 0.5 and events[2].total == 2
    assert report.passed and [r.id for r in report.results] == ["p.one", "p.two"]


async def test_a_failed_required_step_skips_the_rest_but_not_the_clean_up() -> None:
    procedure = Procedure(
        "p",
        "Procedure",
        (
            _step("services", CheckStatus.FAIL, required=True),
            _step("measure", CheckStatus.PASS),
            _step("restore", CheckStatus.PASS, always=True),
        ),
    )
    report = await run_procedure(procedure)
    statuses = {r.id: r.status for r in report.results}
    assert statuses == {
        "p.services": CheckStatus.FAIL,
        "p.measure": CheckStatus.SKIP,
        "p.restore": CheckStatus.PASS,
    }
    assert report.results[1].detail == "skipped: Services failed"
    assert not report.passed


async def test_a_step_that_raises_is_a_failed_check_naming_the_error() -> None:
    procedure = Procedure("p", "Procedure", (Step("connect", "Connect", _crash, stage=Stage.KAFKA),))
    [result] = (await run_procedure(procedure)).results
    assert result.status is CheckStatus.FAIL and result.stage is Stage.KAFKA
    assert result.detail == "the step stopped with ConnectionRefusedError: broker at 127.0.0.1:19092 refused"


async def test_a_step_past_its_limit_fails_saying_where_it_was_and_the_rest_still_runs() -> None:
    async def stuck(context: StepContext) -> list[CheckResult]:
        context.progress("reading Kafka", 0.8)
        context.progress("waiting for the lake to catch up")
        await asyncio.sleep(3600)
        return []

    async def own_timeout(context: StepContext) -> list[CheckResult]:
        raise TimeoutError("the broker reported no log end")

    procedure = Procedure(
        "p",
        "P",
        (
            Step("stuck", "Stuck", stuck, limit=0.05),
            Step("slow", "Slow", own_timeout, limit=60),
            _step("after", CheckStatus.PASS),
        ),
    )
    events: list[object] = []
    stuck_result, own, after = (await run_procedure(procedure, events.append)).results
    progress = [e for e in events if isinstance(e, StepProgress) and e.index == 0]
    assert [(e.detail, e.fraction) for e in progress][-1] == ("waiting for the lake to catch up", 0.8)
    assert stuck_result.status is CheckStatus.FAIL
    assert stuck_result.detail == (
        "the step did not finish within its 0.05 s and was stopped; "
        "it was at: waiting for the lake to catch up"
    )
    assert own.detail == "the step stopped with TimeoutError: the broker reported no log end"
    assert after.status is CheckStatus.PASS


async def test_a_cancelled_run_still_runs_its_clean_up_steps() -> None:
    restored = asyncio.Event()

    async def forever(context: StepContext) -> list[CheckResult]:
        await asyncio.sleep(3600)
        return []

    async def restore(context: StepContext) -> list[CheckResult]:
        restored.set()
        return []

    procedure = Procedure(
        "p", "P", (Step("wait", "Wait", forever), Step("restore", "Restore", restore, always=True))
    )
    task = asyncio.create_task(run_procedure(procedure))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert restored.is_set()


async def test_reports_carry_every_check_in_json_junit_and_markdown() -> None:
    procedure = Procedure(
        "p",
        "Procedure",
        (_step("one", CheckStatus.PASS), _step("two", CheckStatus.FAIL, stage=Stage.ICEBERG)),
    )
    report = await run_procedure(procedure)
    decoded = json.loads(as_json([report]))
    assert decoded["passed"] is False and decoded["procedures"][0]["counts"]["fail"] == 1
    assert decoded["procedures"][0]["steps"][1]["checks"][0]["evidence"] == ["line"]
    suite = ElementTree.fromstring(as_junit([report]).encode()).find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='p.two']/failure")
    assert failure is not None and failure.get("message") == "two fail"
    markdown = as_markdown([report])
    assert markdown.startswith("# k2tui validation: FAILED")
    assert "| Procedure | **failed** | 1 | 1 | 0 | 0 |" in markdown
    assert "- **❌ fail** Two (`p.two`, pipeline): two fail" in markdown
