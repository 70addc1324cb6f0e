"""`k2tui validate consumer` on the session's real stack: it passes on a healthy pipeline, and each way of
breaking the pipeline (rows deleted, a batch written twice, corrupt messages, a bad DLQ entry, a service
down) fails the check that exists to catch it, with the reason in its detail, and leaves the consumer
service running."""

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from pyiceberg.expressions import In

from k2tui.ingest.dlq import append_line
from k2tui.ingest.topics import TOPICS
from k2tui.lake.catalog import open_trades_table
from k2tui.model.trade import Exchange
from k2tui.stack.supervisor import FaultAction, LocalStack, ServiceState
from k2tui.validate.check import CheckResult, CheckStatus
from k2tui.validate.consumer import ConsumerOptions, ConsumerValidation
from k2tui.validate.env import ValidationEnv
from k2tui.validate.procedure import Procedure, ProcedureReport, Step, StepContext, run_procedure
from tests.integration.stack_fixture import json_checks, run_k2tui

pytestmark = pytest.mark.usefixtures("healed")


@pytest.fixture
def env(stack: LocalStack) -> ValidationEnv:
    return ValidationEnv(stack.layout.settings, stack)


def with_step(procedure: Procedure, after: str, body: Callable[[], Awaitable[None]]) -> Procedure:
    """The procedure with a sabotage step right after the step `after`."""

    async def sabotage(context: StepContext) -> list[CheckResult]:
        await body()
        return []

    index = [step.id for step in procedure.steps].index(after) + 1
    steps = (*procedure.steps[:index], Step("sabotage", "sabotage", sabotage), *procedure.steps[index:])
    return Procedure(procedure.name, procedure.title, steps)


def results(report: ProcedureReport) -> dict[str, CheckResult]:
    by_id = {r.id: r for r in report.results}
    assert "consumer.sabotage" not in by_id, by_id["consumer.sabotage"].detail  # it broke what it meant to
    return by_id


def consumer_ready(stack: LocalStack) -> bool:
    return {s.name: s.state for s in stack.status()}["consumer"] is ServiceState.READY


def test_the_cli_passes_on_a_healthy_pipeline_and_reports_the_seed_figures(
    stack: LocalStack, stack_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "consumer.md"
    options = ["--messages", "1500", "--batch-size", "300", "--json", "--report", str(report)]
    done = run_k2tui(stack_env, "validate", "consumer", *options)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = json_checks(done.stdout)
    assert all(c["status"] == "pass" for c in checks.values())
    assert checks["consumer.consumed"]["measured"]["messages_written"] == 1500
    assert checks["consumer.snapshots"]["measured"]["predicted"] == 5
    assert checks["consumer.records"]["measured"]["added"] == 1500
    assert checks["consumer.query_rows"]["measured"]["returned"] == 100
    assert checks["consumer.metrics_throughput"]["measured"]["source"].startswith("Prometheus (job consumer")
    assert "started again" in checks["consumer.restored"]["evidence"][0]
    assert "Messages consumed" in report.read_text()
    assert consumer_ready(stack)


async def test_rows_deleted_a_batch_written_twice_and_the_metrics_port_taken_fail_their_checks(
    env: ValidationEnv, stack: LocalStack
) -> None:
    validation = ConsumerValidation(env, ConsumerOptions(messages=1200, batch_size=300))
    doomed: list[str] = []
    again: list[str] = []

    def break_the_lake() -> None:
        table = open_trades_table(env.layout)
        ids = [t.message_id for t in validation.trades]
        doomed.extend(ids[:4])
        again.extend(ids[10:13])
        table.delete(In("message_id", doomed))
        table.append(table.scan(row_filter=In("message_id", again)).to_arrow())

    squatter = socket.socket()

    async def take_the_metrics_port() -> None:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the scrapes' TIME_WAIT
        squatter.bind(("127.0.0.1", env.settings.consumer.metrics_port))
        squatter.listen()

    async def free_the_port_and_break_the_lake() -> None:
        squatter.close()
        await asyncio.to_thread(break_the_lake)

    procedure = with_step(validation.procedure(), "produce", take_the_metrics_port)
    procedure = with_step(procedure, "consume", free_the_port_and_break_the_lake)
    try:
        report = results(await run_procedure(procedure))
    finally:
        squatter.close()

    assert report["consumer.consumed"].status is CheckStatus.PASS  # the consumer did its part
    assert report["consumer.records"].status is CheckStatus.FAIL
    assert "+1,199 records, +1,200 expected" in report["consumer.records"].detail
    ids = report["consumer.message_ids"]
    assert ids.status is CheckStatus.FAIL and "4 missing, 3 doubled" in ids.detail
    assert {f"missing: {i}" for i in doomed} | {f"doubled: {i} (2 times)" for i in again} == set(ids.evidence)
    snapshots = report["consumer.snapshots"]
    assert snapshots.status is CheckStatus.FAIL and "predicted" in snapshots.detail
    assert "4 snapshot(s) by consumer appends, 2 by anything else" in snapshots.evidence
    endpoint = report["consumer.metrics_endpoint"]
    assert endpoint.status is CheckStatus.FAIL and "cannot serve /metrics on port" in endpoint.detail
    assert report["consumer.metrics_throughput"].status is CheckStatus.FAIL
    assert report["consumer.restored"].status is CheckStatus.PASS
    assert await asyncio.to_thread(consumer_ready, stack)


async def test_corrupt_messages_and_a_dlq_entry_without_its_original_fail_with_the_dlq_diagnosis(
    env: ValidationEnv, stack: LocalStack
) -> None:
    validation = ConsumerValidation(env, ConsumerOptions(messages=1000, batch_size=250))
    garbage = [b"\x00\x00\x00\x00\x01not avro", b"plain text, no magic byte"]
    binance = TOPICS[Exchange.BINANCE]

    async def corrupt() -> None:
        """Ahead of the BTCUSDT trades in their partition, so they are among the N the consumer takes
        (of several partitions, the ones it leaves for later are not predictable)."""
        producer = AIOKafkaProducer(bootstrap_servers=env.endpoints.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for raw in garbage:
                await producer.send_and_wait(binance, raw, key=b"BTCUSDT")
        finally:
            await producer.stop()

    async def bad_entries() -> None:
        entry = {"id": "feedfacecafe0001", "failed_at": "2026-11-22T00:00:00Z", "source": "consumer"}
        no_original = json.dumps(entry | {"error": "", "raw_base64": ""}).encode() + b"\n"
        torn = b'{"id": "feedfacecafe0002", "error": "half written' + b"\n"
        for line in (no_original, torn):
            append_line(env.dlq_directory / "consumer-20261122.jsonl", line)

    procedure = with_step(validation.procedure(), "baseline", corrupt)
    procedure = with_step(procedure, "consume", bad_entries)
    report = results(await run_procedure(procedure))

    written = report["consumer.written"]
    assert written.status is CheckStatus.FAIL
    assert "998 written of 1,000 consumed; 2 went to the DLQ" in written.detail
    dlq_lines = [line for line in written.evidence if line.startswith("DLQ ")]
    assert len(dlq_lines) == 2 and all(f"{binance}[" in line for line in dlq_lines)
    assert any("magic" in line for line in dlq_lines)
    assert report["consumer.no_loss"].status is CheckStatus.PASS  # refused, not lost
    dlq = report["consumer.dlq"]
    assert dlq.status is CheckStatus.FAIL
    assert "feedfacecafe0001: no reason and original message not kept" in dlq.evidence
    assert any(line.startswith("unreadable entry ") for line in dlq.evidence)
    kept = [line for line in dlq.evidence if line.startswith("DLQ ")]
    assert len(kept) == 2  # the consumer's own entries hold their reason and bytes
    assert await asyncio.to_thread(consumer_ready, stack)


async def test_a_service_down_fails_the_services_check_skips_the_rest_and_keeps_the_consumer(
    env: ValidationEnv, stack: LocalStack
) -> None:
    stack.fault("registry", FaultAction.STOP)
    report = await run_procedure(ConsumerValidation(env, ConsumerOptions(messages=100)).procedure())
    checks = results(report)
    services = checks["consumer.services"]
    assert services.status is CheckStatus.FAIL and "not ready: registry" in services.detail
    skipped = [r for r in report.results if r.status is CheckStatus.SKIP]
    assert len(skipped) == 8 and all("Services running failed" in r.detail for r in skipped)
    assert checks["consumer.restored"].status is CheckStatus.PASS
    assert not report.passed
    assert await asyncio.to_thread(consumer_ready, stack)
