"""Every fault the tool injects is survived with exact counts, and the proof fails when it should.

These run on the session's stack, against its own topics, table and consumer service, as a user runs
`k2tui validate faults`. The exactly-once proof itself (lost and doubled ids named by stage) is the
pipeline's consistency check, broken on this stack by tests/e2e/test_complete_pipeline.py; the verdicts
only faults have are broken with hand-made figures in tests/unit/test_fault_judges.py.
"""

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from k2tui.stack.proxy import Mode
from k2tui.stack.supervisor import FaultAction, LocalStack
from k2tui.validate.check import CheckResult, CheckStatus
from k2tui.validate.env import ValidationEnv
from k2tui.validate.fault_names import SCENARIOS
from k2tui.validate.faults import Fault, FaultsOptions, faults_procedure
from k2tui.validate.procedure import ProcedureReport, run_procedure


def _env(stack: LocalStack) -> ValidationEnv:
    return ValidationEnv(stack.layout.settings, stack)


async def _run(stack: LocalStack, options: FaultsOptions) -> ProcedureReport:
    return await run_procedure(faults_procedure(_env(stack), options))


def _by_id(report: ProcedureReport) -> dict[str, CheckResult]:
    return {result.id: result for result in report.results}


def _not_passed(report: ProcedureReport) -> str:
    return "\n".join(
        f"{r.id}: {r.status} {r.detail}" for r in report.results if r.status is not CheckStatus.PASS
    )


@pytest.mark.timeout(900)  # six scenarios and the soak: about 100 s on a quiet machine
async def test_every_fault_and_a_chaos_soak_leave_nothing_lost_or_doubled(
    stack: LocalStack, soak_rounds: int
) -> None:
    # Recovery takes a few seconds here; a limit of 45 s (not the users' 90) lets a run that does not
    # recover wait out every limit and still report which checks failed before the test's timeout.
    options = FaultsOptions(soak_rounds=soak_rounds, seed=20261122, hold=1.5, recovery_limit=45)
    report = await _run(stack, options)
    assert report.passed and not _not_passed(report), _not_passed(report)
    checks = _by_id(report)
    for scenario in SCENARIOS:
        assert checks[f"faults.{scenario}.missing"].status is CheckStatus.PASS
        assert checks[f"faults.{scenario}.recovery"].measured["recovery_s"] > 0
    for dependency_fault in ("registry_unavailable", "object_store"):
        assert checks[f"faults.{dependency_fault}.breaker"].status is CheckStatus.PASS
        assert checks[f"faults.{dependency_fault}.held"].measured["written_while_away"] == 0
    assert checks["faults.graceful_shutdown.sigterm"].measured["exit_code"] == 0
    assert checks["faults.soak.recovery"].measured["rounds"] == soak_rounds
    assert "seed 20261122" in checks["faults.soak.recovery"].evidence[0]


async def test_a_fault_left_unhealed_fails_recovery_and_the_stack_is_healed_after(stack: LocalStack) -> None:
    async def partition(env: ValidationEnv) -> str:
        return await asyncio.to_thread(
            env.stack.fault, "object-store", FaultAction.PARTITION, mode=Mode.RESET
        )

    async def forget(env: ValidationEnv) -> str:
        return "not healed"

    never: Callable[[ValidationEnv], Awaitable[str]] = forget
    stuck = Fault("stuck", "Object store away for good", partition, never)
    options = FaultsOptions(
        scenarios=("stuck",), extra_faults={"stuck": stuck}, soak_rounds=0, hold=0.5, recovery_limit=4
    )
    report = await _run(stack, options)
    checks = _by_id(report)
    assert checks["faults.stuck.recovery"].status is CheckStatus.FAIL
    assert checks["faults.stuck.recovery"].detail.startswith("not recovered within 4 s of the heal")
    assert checks["faults.healed"].status is CheckStatus.PASS  # the always-step healed the object store


async def test_a_stopped_consumer_service_fails_the_precondition_and_skips_every_scenario(
    stack: LocalStack,
) -> None:
    await asyncio.to_thread(stack.fault, "consumer", FaultAction.STOP)
    report = await _run(stack, FaultsOptions(scenarios=("consumer_crash",), soak_rounds=1))
    checks = _by_id(report)
    assert checks["faults.services"].status is CheckStatus.FAIL
    assert "not ready: consumer" in checks["faults.services"].detail
    assert checks["faults.consumer_crash"].status is CheckStatus.SKIP
    assert checks["faults.soak"].status is CheckStatus.SKIP
    assert checks["faults.healed"].status is CheckStatus.PASS
