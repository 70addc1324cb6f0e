"""`health` on the session's running stack: it reads a working stack as working, and each way the stack
can be unhealthy (a stopped consumer, garbage on a topic, an error in a log, Prometheus without rules)
turns the check that exists to catch it into a failure that says why."""

import asyncio
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from k2tui.ingest.dlq import collect_dead_letters
from k2tui.ingest.topics import TOPICS
from k2tui.lake.catalog import open_trades_table
from k2tui.model.samples import sample_trades
from k2tui.model.trade import Exchange
from k2tui.stack import binaries
from k2tui.stack.ports import find_free_port
from k2tui.stack.supervisor import FaultAction, LocalStack
from k2tui.validate.check import CheckResult, CheckStatus
from k2tui.validate.env import ValidationEnv, services_ready
from k2tui.validate.health import (
    FlowWatch,
    HealthOptions,
    alert_rules,
    alerts_firing,
    consumer_group,
    consumer_lag,
    health_procedure,
    lag_monitoring,
    lag_result,
    metrics_reporting,
)
from k2tui.validate.procedure import StepProgress, run_procedure
from tests.integration.pipeline import ids_in_lake, produce, until

BINANCE = TOPICS[Exchange.BINANCE]


@pytest.fixture
def env(stack: LocalStack) -> ValidationEnv:
    return ValidationEnv(stack.layout.settings, stack)


def _now_us() -> int:
    return time.time_ns() // 1000


async def _eventually(
    check: Callable[[], Awaitable[CheckResult]], status: CheckStatus, limit: float
) -> CheckResult:
    """The check's result once it has `status` (Prometheus scrapes and evaluates once a second)."""
    deadline = time.monotonic() + limit
    while (result := await check()).status is not status:
        if time.monotonic() > deadline:
            raise AssertionError(f"{result.id} still {result.status.value} after {limit} s: {result.detail}")
        await asyncio.sleep(0.5)
    return result


async def _drained(env: ValidationEnv) -> None:
    """Wait until the consumer has written what earlier tests left in Kafka, so the window is ours."""
    deadline = time.monotonic() + 60
    while (reading := await consumer_lag(env)).total > 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"the consumer is still {reading.total} behind")
        await asyncio.sleep(0.5)


async def test_a_working_stack_with_traffic_passes_the_health_checks(
    env: ValidationEnv, stack: LocalStack
) -> None:
    trades = list(sample_trades(60, seed=9101, start_us=_now_us()))
    await produce(stack, BINANCE, trades)
    table = open_trades_table(stack.layout)
    await until(lambda: len(ids_in_lake(table, trades)) == len(trades), 60, "the trades reach the lake")
    events: list[object] = []
    report = await run_procedure(health_procedure(env, HealthOptions(window=2.0)), events.append)
    results = {r.id: r for r in report.results}
    assert set(results) == {
        f"health.{name}"
        for name in (
            "services",
            "metrics_reporting",
            "lag_monitoring",
            "alert_rules",
            "alerts",
            "freshness",
            "throughput",
            "consumer_lag",
            "snapshots",
            "consumer_group",
            "dlq",
            "logs",
        )
    }
    for name in (
        "services",
        "metrics_reporting",
        "lag_monitoring",
        "alert_rules",
        "freshness",
        "consumer_group",
    ):
        assert results[f"health.{name}"].status is CheckStatus.PASS, results[f"health.{name}"]
    assert "K2ConsumerLagHigh and K2ConsumerDown loaded" in results["health.alert_rules"].detail
    assert any(isinstance(e, StepProgress) and "watching the flow" in e.detail for e in events)


async def test_an_error_line_in_a_service_log_fails_the_log_check(
    env: ValidationEnv, stack: LocalStack
) -> None:
    watch = FlowWatch(env)
    await watch.begin()
    line = f"ERROR:    Exception in ASGI application ({uuid.uuid4()})"
    with stack.layout.log_file("api").open("a") as log:
        log.write(line + "\n")
    result = await watch.log_result()
    assert result.status is CheckStatus.FAIL
    assert "error/warning line(s)" in result.detail and "api" in result.detail
    assert f"api: {line}" in result.evidence


async def test_a_rebalance_error_in_the_consumer_log_fails_the_group_check(
    env: ValidationEnv, stack: LocalStack
) -> None:
    watch = FlowWatch(env)
    await watch.begin()
    line = (
        f"Heartbeat failed for group {env.settings.consumer.group} because it is rebalancing: "
        f"RebalanceInProgressError ({uuid.uuid4()})"
    )
    with stack.layout.log_file("consumer").open("a") as log:
        log.write(line + "\n")
    group = await consumer_group(env, watch)
    assert group.status is CheckStatus.FAIL
    assert group.detail == "1 rebalance error(s) in the consumer's log"
    assert f"consumer log: {line}" in group.evidence


async def test_garbage_on_a_topic_fails_the_dead_letter_and_snapshot_checks(
    env: ValidationEnv, stack: LocalStack
) -> None:
    await _drained(env)
    watch = FlowWatch(env)
    await watch.begin()
    marker = f"not a trade {uuid.uuid4()}".encode()
    await produce(stack, BINANCE, [], extra=[marker] * 30)

    def dead_lettered() -> list[str]:
        return [d.id for d in collect_dead_letters(env.dlq_directory) if d.raw_bytes() == marker]

    await until(lambda: len(dead_lettered()) == 30, 30, "the consumer dead-letters the garbage")
    _, _, snapshots = await watch.flow_results()
    assert snapshots.status is CheckStatus.FAIL, snapshots
    assert "while 30 messages were consumed" in snapshots.detail
    dlq = await watch.dlq_result()
    assert dlq.status is CheckStatus.FAIL and dlq.detail.startswith("30 dead letter(s) since")
    assert all(any(letter in line for line in dlq.evidence) for letter in dead_lettered()[:10])


@pytest.fixture
def bare_prometheus(tmp_path: Path) -> Iterator[str]:
    """A Prometheus of the test's own with no rules and nothing to scrape."""
    program = binaries.prometheus()
    if program is None:
        pytest.skip("Prometheus is not installed")
    port = find_free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n")
    process = subprocess.Popen(
        [
            program,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the test's Prometheus did not become ready"
        time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


async def test_a_prometheus_without_rules_or_the_lag_metric_fails_both_checks(bare_prometheus: str) -> None:
    rules = await alert_rules(bare_prometheus)
    assert rules.status is CheckStatus.FAIL
    assert rules.detail == (
        "missing an alert on k2_consumer_lag above at most 10,000; "
        "missing an alert on the consumer being down (0 alerting rule(s) loaded)"
    )
    lag = await lag_monitoring(bare_prometheus)
    assert lag.status is CheckStatus.FAIL and "k2_consumer_lag is not in Prometheus" in lag.detail


async def test_without_prometheus_the_metrics_endpoints_are_read_directly(stack: LocalStack) -> None:
    local = LocalStack(stack.layout.settings)  # the session's stack, seen as if Prometheus were not installed
    local.specs["prometheus"] = replace(local.specs["prometheus"], unavailable="not installed")
    env = ValidationEnv(stack.layout.settings, local)
    answering = await metrics_reporting(env)
    assert answering.status is CheckStatus.WARN
    assert (
        "Prometheus is not installed" in answering.detail and "/metrics endpoints answer" in answering.detail
    )
    dead = f"127.0.0.1:{find_free_port()}"
    local.specs["consumer"] = replace(local.specs["consumer"], metrics_target=dead)
    silent = await metrics_reporting(env)
    assert silent.status is CheckStatus.FAIL and silent.detail == "no metrics from consumer"
    assert any(line.startswith(f"consumer: cannot read http://{dead}/metrics") for line in silent.evidence)


async def test_a_stopped_consumer_fails_services_targets_lag_group_and_alerts(
    env: ValidationEnv, stack: LocalStack
) -> None:
    prometheus = env.endpoints.prometheus_url
    await env.fault("consumer", FaultAction.STOP)
    try:
        await produce(stack, BINANCE, sample_trades(1_100, seed=9102, start_us=_now_us()))
        services = await services_ready(env, list(env.stack.specs), check_id="health.services")
        assert services.status is CheckStatus.FAIL and "not ready: consumer" in services.detail
        reporting = await _eventually(lambda: metrics_reporting(env), CheckStatus.FAIL, 15)
        assert reporting.detail.startswith("down: consumer")
        lag = lag_result(await consumer_lag(env))
        assert lag.status is CheckStatus.FAIL and lag.measured["lag"] >= 1_100
        assert lag.measured["source"] == "Kafka log end − committed offsets"
        group = await consumer_group(env)
        assert group.status is CheckStatus.FAIL
        assert "has no member" in group.detail or "the consumer service is stopped" in group.detail
        alerts = await _eventually(lambda: alerts_firing(prometheus), CheckStatus.FAIL, 40)
        assert alerts.detail == "firing: K2ConsumerDown"
    finally:
        await env.fault("consumer", FaultAction.START)
