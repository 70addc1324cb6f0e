"""The seed's complete pipeline test (Step 02) on the session's real stack, through `k2tui validate pipeline`.

One short run of the procedure serves the seed's first four tests; the load test runs it again at a high
rate. Then the same procedure with sabotage steps inserted proves each check fails where the pipeline
breaks: rows deleted from the lake and a batch appended twice (named by id, blamed on Iceberg), a corrupt
message in Kafka (named by offset), trade times in the future and receipts before the trade, and the API
stopped (a plain reason).
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import In

from k2tui.consume.writer import carried_properties
from k2tui.lake.catalog import open_trades_table
from k2tui.model.samples import sample_trades
from k2tui.model.schema import trade_v2_schema, trade_v2_schema_text
from k2tui.model.trade import TradeV2
from k2tui.model.wire import AvroEncoder, frame_header
from k2tui.stack.registry.client import RegistryClient
from k2tui.stack.supervisor import FaultAction, LocalStack
from k2tui.validate.check import CheckResult, CheckStatus, Stage
from k2tui.validate.env import ValidationEnv
from k2tui.validate.pipeline import PipelineOptions, pipeline_procedure
from k2tui.validate.procedure import Procedure, ProcedureReport, Step, StepContext, run_procedure
from tests.integration.stack_fixture import json_checks, run_k2tui

TOPIC = "market.crypto.trades.binance"


def run(procedure: Procedure) -> ProcedureReport:
    return asyncio.run(run_procedure(procedure))


def checks(report: ProcedureReport) -> dict[str, CheckResult]:
    return {result.id: result for result in report.results}


def failures(report: ProcedureReport) -> str:
    return "\n".join(
        f"{r.id}: {r.detail} {r.evidence[:3]}" for r in report.results if r.status is CheckStatus.FAIL
    )


def without(procedure: Procedure, *step_ids: str) -> Procedure:
    return replace(procedure, steps=tuple(s for s in procedure.steps if s.id not in step_ids))


def inserted(procedure: Procedure, extra: dict[str, Step]) -> Procedure:
    """`procedure` with each extra step right after the step named by its key."""
    steps: list[Step] = []
    for step in procedure.steps:
        steps.append(step)
        if step.id in extra:
            steps.append(extra[step.id])
    return replace(procedure, steps=tuple(steps))


@pytest.fixture(scope="class")
def env(stack: LocalStack) -> ValidationEnv:
    return ValidationEnv(stack.layout.settings, stack)


@pytest.fixture(scope="class")
def report(env: ValidationEnv) -> ProcedureReport:
    return run(pipeline_procedure(env, PipelineOptions(duration=6.0, rate=10.0)))


class TestCompleteDataPipeline:
    """Comprehensive end-to-end data pipeline validation."""

    def test_binance_to_api_pipeline(self, report: ProcedureReport, env: ValidationEnv) -> None:
        """Binance (simulated) → Kafka → consumer → Iceberg → API, every check holding."""
        assert report.passed, failures(report)
        found = checks(report)
        assert "binance (SIMULATED: " in found["pipeline.stream"].detail
        assert found["pipeline.written"].status is CheckStatus.PASS
        assert found["pipeline.api_query"].measured["window_items"] > 0
        response = httpx.get(f"{env.api_url}/v1/trades?table_type=TRADES&limit=100", timeout=10)
        assert response.status_code == 200
        assert {item["exchange"] for item in response.json()["data"]} >= {"BINANCE"}

    def test_pipeline_data_consistency(self, report: ProcedureReport) -> None:
        """kafka_count == iceberg_count == api_count, no duplicates, none missing, sequences exact."""
        found = checks(report)
        counts = found["pipeline.counts"].measured
        assert counts["kafka_count"] == counts["iceberg_count"] == counts["api_count"] > 0
        for name in ("counts", "duplicates", "missing", "sequences"):
            assert found[f"pipeline.{name}"].status is CheckStatus.PASS, found[f"pipeline.{name}"].detail
        gaps = found["pipeline.sequence_gaps"]
        assert gaps.status is CheckStatus.PASS, gaps.detail
        assert gaps.measured["kafka_gaps"] >= 1 and gaps.measured["consumer_gaps"] >= 1

    def test_pipeline_schema_compliance(self, report: ProcedureReport) -> None:
        """v2 compliance in Kafka, the lake's schema and rows, the API's items; timestamps measured."""
        found = checks(report)
        stages = {
            "kafka_schema": Stage.KAFKA,
            "iceberg_schema": Stage.ICEBERG,
            "iceberg_rows": Stage.ICEBERG,
            "api_schema": Stage.API,
            "timestamp_format": Stage.API,
            "api_order": Stage.API,
            "kafka_order": Stage.KAFKA,
            "future_trades": Stage.KAFKA,
            "ingestion_skew": Stage.KAFKA,
        }
        for name, stage in stages.items():
            result = found[f"pipeline.{name}"]
            assert (result.status, result.stage) == (CheckStatus.PASS, stage), result.detail
        assert (
            found["pipeline.values"].measured["compared"]
            == 2 * found["pipeline.counts"].measured["kafka_count"]
        )

    def test_pipeline_error_handling(self, report: ProcedureReport) -> None:
        """Malformed exchange messages and an undecodable payload reach the DLQ intact; the rest flows on."""
        found = checks(report)
        step = next(s for s in report.steps if s.id == "error_handling")
        assert all(r.status is CheckStatus.PASS for r in step.results), failures(report)
        assert found["pipeline.error_handling.stream_dlq"].measured["found"] == 4
        assert "bad_magic" in found["pipeline.error_handling.kafka_dlq"].detail
        assert found["pipeline.error_handling.carried_on"].measured["trades_after"] > 0
        assert found["pipeline.error_handling.counts"].measured["kafka_count"] > 0

    def test_pipeline_performance_under_load(self, env: ValidationEnv) -> None:
        """About 1,000 trades a second for 5 s: counts stay exact and the end-to-end latency is reported."""
        options = PipelineOptions(duration=5.0, rate=250.0, latency_limit=10.0)
        loaded = run(without(pipeline_procedure(env, options), "error_handling"))
        assert loaded.passed, failures(loaded)
        found = checks(loaded)
        assert found["pipeline.counts"].measured["kafka_count"] >= 3_000
        latency = found["pipeline.latency"].measured
        print(f"\nunder load: {found['pipeline.stream'].detail}\nlatency: {found['pipeline.latency'].detail}")
        assert latency["trades"] == found["pipeline.counts"].measured["kafka_count"]
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= 10_000


def shib_trades(count: int) -> list[TradeV2]:
    """Fresh valid Binance SHIBUSDT trades (a symbol the simulator never streams), sequence rising."""
    base = int(time.time() * 1000)
    template = next(t for t in sample_trades(200) if t.symbol == "SHIBUSDT")
    return [
        msgspec.structs.replace(
            template,
            message_id=str(uuid.uuid4()),
            trade_id=f"BINANCE-{base + n}",
            sequence_number=base + n,
        )
        for n in range(count)
    ]


async def produce(env: ValidationEnv, values: list[bytes]) -> list[int]:
    """Each value to the Binance topic keyed SHIBUSDT; their offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=env.endpoints.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        return [(await producer.send_and_wait(TOPIC, v, key=b"SHIBUSDT")).offset for v in values]
    finally:
        await producer.stop()


def retried(change: Callable[[], None]) -> None:
    """A lake commit retried past the consumer's concurrent appends."""
    for _ in range(20):
        try:
            change()
            return
        except CommitFailedException:
            time.sleep(0.2)
    raise AssertionError("the lake change kept conflicting")


class TestPipelineChecksCatchBreakage:
    def test_each_break_fails_its_check_at_its_stage(self, env: ValidationEnv, healed: None) -> None:
        now = time.time_ns() // 1000
        ahead, early, *plain = shib_trades(8)
        ahead = msgspec.structs.replace(
            ahead, timestamp=now + 30_000_000, ingestion_timestamp=now + 30_000_000
        )
        early = msgspec.structs.replace(early, timestamp=now, ingestion_timestamp=now - 10_000_000)
        for i, trade in enumerate(plain):
            plain[i] = msgspec.structs.replace(trade, timestamp=now, ingestion_timestamp=now + 5_000)
        deleted, doubled = [t.message_id for t in plain[:2]], [t.message_id for t in plain[2:4]]
        corrupt_at: list[int] = []

        async def sabotage_kafka(context: StepContext) -> list[CheckResult]:
            schema_id = RegistryClient(env.endpoints.registry_url).register(
                f"{TOPIC}-value", trade_v2_schema_text()
            )
            encoder = AvroEncoder(schema_id, trade_v2_schema())
            good = [encoder.encode(t.to_avro()) for t in (ahead, early, *plain)]
            corrupt = frame_header(schema_id) + b"\x02\xff\xff\xff garbage, not the v2 record"
            offsets = await produce(env, [*good, corrupt])
            corrupt_at.append(offsets[-1])
            return []

        async def sabotage_lake(context: StepContext) -> list[CheckResult]:
            table = open_trades_table(env.layout)
            await until_in_lake(table, [*deleted, *doubled])
            retried(lambda: table.refresh().delete(In("message_id", deleted), carried_properties(table)))
            copies = table.refresh().scan(row_filter=In("message_id", doubled)).to_arrow()
            retried(lambda: table.refresh().append(copies, carried_properties(table)))
            await env.fault("api", FaultAction.STOP)
            return []

        async def heal_api(context: StepContext) -> list[CheckResult]:
            await env.fault("api", FaultAction.START)
            return []

        procedure = inserted(
            without(pipeline_procedure(env, PipelineOptions(duration=3.0, rate=10.0)), "error_handling"),
            {
                "stream": Step("sabotage_kafka", "Corrupt and skewed messages", sabotage_kafka),
                "consume": Step("sabotage_lake", "Rows deleted and doubled; API stopped", sabotage_lake),
            },
        )
        procedure = replace(
            procedure, steps=(*procedure.steps, Step("heal", "API back", heal_api, always=True))
        )
        try:
            broken = run(procedure)
        finally:
            env.stack.fault("api", FaultAction.START)
        found = checks(broken)

        missing = found["pipeline.missing"]
        assert (missing.status, missing.stage) == (CheckStatus.FAIL, Stage.ICEBERG)
        assert missing.detail.startswith("iceberg lost 2: ") and all(i in missing.detail for i in deleted)

        duplicates = found["pipeline.duplicates"]
        assert (duplicates.status, duplicates.stage) == (CheckStatus.FAIL, Stage.ICEBERG)
        assert "iceberg doubled 2: " in duplicates.detail and all(i in duplicates.detail for i in doubled)

        kafka = found["pipeline.kafka_schema"]
        assert (kafka.status, kafka.stage) == (CheckStatus.FAIL, Stage.KAFKA)
        partition = next(e for e in kafka.evidence if f"@{corrupt_at[0]}:" in e)
        assert partition.startswith(f"{TOPIC}[") and "does not decode (bad_body)" in partition

        future = found["pipeline.future_trades"]
        assert future.status is CheckStatus.FAIL and ahead.trade_id in future.detail

        skew = found["pipeline.ingestion_skew"]
        assert skew.status is CheckStatus.FAIL and f"first {early.trade_id}" in skew.detail

        api = found["pipeline.api_query"]
        assert (api.status, api.stage) == (CheckStatus.FAIL, Stage.API)
        assert api.detail.startswith(f"the API at {env.api_url} cannot be reached: ConnectError")
        assert found["pipeline.api_schema"].status is CheckStatus.SKIP
        assert httpx.get(f"{env.api_url}/health", timeout=10).status_code == 200


async def until_in_lake(table, ids: list[str], limit: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while True:
        rows = (
            table.refresh().scan(row_filter=In("message_id", ids), selected_fields=("message_id",)).to_arrow()
        )
        if rows.num_rows >= len(ids):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not in the lake within {limit} s: {ids}")
        await asyncio.sleep(0.2)


class TestPipelinePreconditions:
    def test_a_stopped_service_fails_the_first_step_and_skips_the_rest(self, env: ValidationEnv) -> None:
        env.stack.fault("api", FaultAction.STOP)
        try:
            stopped = run(pipeline_procedure(env, PipelineOptions(duration=1.0)))
        finally:
            env.stack.fault("api", FaultAction.START)
        found = checks(stopped)
        assert found["pipeline.services"].status is CheckStatus.FAIL
        assert found["pipeline.services"].detail.startswith("not ready: api")
        assert found["pipeline.stream"].status is CheckStatus.SKIP
        assert found["pipeline.stream"].detail == "skipped: Services running failed"

    def test_an_unreachable_live_exchange_fails_the_stream_with_the_address(self, env: ValidationEnv) -> None:
        settings = env.settings
        closed = replace(settings, binance=replace(settings.binance, ws_url="ws://127.0.0.1:1"))
        options = PipelineOptions(duration=1.0, source="live", exchanges=("binance",))
        report = run(pipeline_procedure(ValidationEnv(closed, env.stack), options))
        stream = checks(report)["pipeline.stream"]
        assert stream.status is CheckStatus.FAIL
        assert "cannot reach binance at ws://127.0.0.1:1" in stream.detail
        assert checks(report)["pipeline.consume"].status is CheckStatus.SKIP


class TestPipelineWithoutConsumerService:
    def test_a_consumer_runs_in_process_when_the_stack_has_none(
        self, stack: LocalStack, healed: None
    ) -> None:
        """A stack without the consumer service: the procedure writes the window itself, then stops it."""
        bare = LocalStack(stack.layout.settings)
        del bare.specs["consumer"]
        env = ValidationEnv(stack.layout.settings, bare)
        stack.fault("consumer", FaultAction.STOP)
        try:
            report = run(without(pipeline_procedure(env, PipelineOptions(duration=3.0)), "error_handling"))
        finally:
            stack.fault("consumer", FaultAction.START)
        assert report.passed, failures(report)
        found = checks(report)
        assert found["pipeline.written"].evidence[0] == (
            "the stack has no consumer service; a consumer runs in this process"
        )
        assert found["pipeline.consumer_accounted"].status is CheckStatus.PASS
        assert found["pipeline.sequence_gaps"].measured["consumer_gaps"] >= 1
        assert [step.id for step in report.steps][-2:] == ["finish", "restore"]


def test_the_cli_runs_the_procedure_and_writes_every_report(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    junit, markdown = tmp_path / "pipeline.xml", tmp_path / "pipeline.md"
    options = ["--duration", "2", "--json", "--junit", str(junit), "--report", str(markdown)]
    done = run_k2tui(stack_env, "validate", "pipeline", *options)
    assert done.returncode == 0, done.stdout + done.stderr
    found = json_checks(done.stdout)
    assert found["pipeline.counts"]["status"] == "pass"
    assert found["pipeline.error_handling.kafka_dlq"]["status"] == "pass"
    assert 'name="pipeline.counts"' in junit.read_text()
    assert "Counts match at every stage" in markdown.read_text()
