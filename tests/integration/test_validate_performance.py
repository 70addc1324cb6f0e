"""The performance procedure on the session's stack, with small counts: it holds, saves a baseline, and a
slowed object store then shows up as a regression against it."""

import asyncio
import subprocess
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from k2tui.lake.catalog import open_catalog
from k2tui.lake.table import NAMESPACE
from k2tui.stack.proxy import Mode
from k2tui.stack.registry.client import RegistryClient
from k2tui.stack.supervisor import FaultAction, LocalStack
from k2tui.validate.baseline import load_baseline
from k2tui.validate.check import CheckStatus
from k2tui.validate.env import ValidationEnv
from k2tui.validate.performance import TABLE_PREFIX, TOPIC_PREFIX, PerformanceOptions, performance_procedure
from k2tui.validate.procedure import ProgressEvent, StepStarted, run_procedure
from tests.integration.stack_fixture import json_checks, run_k2tui

SMALL = {"cold_messages": 250, "warm_messages": 1000, "sustained_messages": 1500, "latency_messages": 500}
BATCH = 250
STORE_DELAY_MS = 15
PHASE_CHECKS = (
    "performance.cold_start",
    "performance.cold_iceberg_tx",
    "performance.warm_throughput",
    "performance.warm_iceberg_tx",
    "performance.sustained_throughput",
    "performance.sustained_iceberg_tx",
    "performance.latency",
)


@pytest.fixture(scope="module")
def baseline(
    stack: LocalStack, stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One `k2tui validate performance --save-baseline` run, shared by the tests of this module."""
    path = tmp_path_factory.mktemp("performance") / "local-performance.json"
    options = [f"--{name.replace('_', '-')}={value}" for name, value in SMALL.items()]
    options += [f"--batch-size={BATCH}", f"--baseline={path}", "--save-baseline", "--json"]
    done = run_k2tui(stack_env, "validate", "performance", *options, timeout=300)
    return path, done


def scratch_left(stack: LocalStack) -> list[str]:
    async def topics() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=stack.layout.endpoints.kafka_bootstrap)
        await admin.start()
        try:
            return [t for t in await admin.list_topics() if t.startswith(TOPIC_PREFIX)]
        finally:
            await admin.close()

    tables = [
        ".".join(t)
        for t in open_catalog(stack.layout).list_tables(NAMESPACE)
        if t[-1].startswith(TABLE_PREFIX)
    ]
    with RegistryClient(stack.layout.endpoints.registry_url) as registry:
        subjects = [s for s in registry.subjects() if s.startswith(TOPIC_PREFIX)]
    return asyncio.run(topics()) + tables + subjects


def test_the_cli_holds_on_a_small_run_saves_its_figures_and_leaves_nothing_behind(
    stack: LocalStack, baseline: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    path, done = baseline

    assert done.returncode == 0, done.stdout + done.stderr
    checks = json_checks(done.stdout)
    for check_id in PHASE_CHECKS:  # each measured for real: pass, or warn outside the seed's range
        assert checks[check_id]["status"] in ("pass", "warn"), checks[check_id]
    assert checks["performance.prepare"]["measured"]["messages"] == 1500
    assert checks["performance.cold_start"]["measured"]["messages"] == 250
    assert checks["performance.warm_throughput"]["measured"]["batches"] == 3
    assert checks["performance.regression"]["status"] == "skip"
    assert checks["performance.regression"]["detail"] == "no baseline yet: run with --save-baseline"
    assert checks["performance.baseline_saved"]["status"] == "pass"
    saved = load_baseline(path)
    assert saved is not None
    assert {f.name: f.value for f in saved.figures}["sustained throughput"] == pytest.approx(
        checks["performance.sustained_throughput"]["measured"]["sustained throughput"], rel=1e-3
    )
    assert checks["performance.clean_up"]["status"] == "pass"
    assert scratch_left(stack) == []


def test_a_slowed_object_store_fails_the_regression_check_against_the_baseline(
    stack: LocalStack, baseline: tuple[Path, subprocess.CompletedProcess[str]], healed: None
) -> None:
    path, _ = baseline
    assert path.exists(), "the baseline run saved nothing"
    options = PerformanceOptions(**SMALL, batch_size=BATCH, baseline=path, tolerance=0.25)
    procedure = performance_procedure(ValidationEnv(stack.layout.settings, stack), options)

    def heal_once_measured(event: ProgressEvent) -> None:
        """The store is slow while the phases run; the comparison and the clean-up need not wait on it."""
        if isinstance(event, StepStarted) and event.title == "Against the baseline":
            stack.fault("object-store", FaultAction.HEAL)

    stack.fault("object-store", FaultAction.PARTITION, mode=Mode.DELAY, delay_ms=STORE_DELAY_MS)
    report = asyncio.run(run_procedure(procedure, heal_once_measured))

    regression = next(r for r in report.results if r.id == "performance.regression")
    assert regression.status is CheckStatus.FAIL
    slower = regression.measured["regressions"]
    assert any("Iceberg TX" in name for name in slower), regression.detail
    assert "above the baseline" in regression.detail and "(tolerance 25%)" in regression.detail
    assert scratch_left(stack) == []
