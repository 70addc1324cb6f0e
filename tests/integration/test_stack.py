"""The local stack, for real: every service answers its protocol, faults act and heal."""

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pyarrow as pa
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from k2tui.lake.catalog import open_catalog
from k2tui.model.schema import trade_v2_schema_text
from k2tui.stack.ports import port_is_free
from k2tui.stack.probes import s3_client
from k2tui.stack.proxy import Mode
from k2tui.stack.registry.client import RegistryClient
from k2tui.stack.supervisor import FaultAction, LocalStack, ServiceState
from tests.integration.stack_fixture import k2tui_env


def _status(stack: LocalStack, name: str):
    return next(s for s in stack.status() if s.name == name)


def _s3(stack: LocalStack, timeout: float = 5.0):
    e = stack.layout.endpoints
    return s3_client(e.s3_endpoint, e.s3_access_key, e.s3_secret_key, e.s3_region, timeout)


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        batch = [producer.send(topic, key=b"k", value=f"m{i}".encode()) for i in range(count)]
        await asyncio.gather(*[await f for f in batch])
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, group: str, count: int, commit: bool) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(values) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=count - len(values))
            for records in batches.values():
                values.extend(r.value for r in records)
        if commit:
            await consumer.commit()
    finally:
        await consumer.stop()
    return values


async def _committed(bootstrap: str, topic: str, group: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


@pytest.fixture
def healed(stack: LocalStack) -> Iterator[LocalStack]:
    """The stack, with every service healed after the test whatever it did (those run on demand stay
    as the test left them: healing would start them)."""
    yield stack
    for name, spec in stack.specs.items():
        if spec.command and not spec.unavailable and not spec.on_demand:
            stack.fault(name, FaultAction.HEAL)


def test_every_installed_service_is_ready(stack: LocalStack) -> None:
    states = {s.name: s.state for s in stack.status()}
    expected = {n for n, spec in stack.specs.items() if not spec.unavailable and not spec.on_demand}
    assert {n for n, state in states.items() if state is ServiceState.READY} == expected
    assert all(states[n] is ServiceState.STOPPED for n, spec in stack.specs.items() if spec.on_demand)


def test_produce_and_consume_through_the_broker(stack: LocalStack) -> None:
    bootstrap = stack.layout.endpoints.kafka_bootstrap
    topic = f"t-{uuid.uuid4().hex[:8]}"
    asyncio.run(_produce(bootstrap, topic, 100))
    values = asyncio.run(_consume(bootstrap, topic, "g-roundtrip", 100, commit=False))
    assert values == [f"m{i}".encode() for i in range(100)]


def test_put_and_get_an_object(stack: LocalStack) -> None:
    client = _s3(stack)
    bucket = stack.layout.settings.stack.warehouse_bucket
    client.put_object(Bucket=bucket, Key="probe/hello.txt", Body=b"hello lake")
    assert client.get_object(Bucket=bucket, Key="probe/hello.txt")["Body"].read() == b"hello lake"


def test_create_and_read_an_iceberg_table(stack: LocalStack) -> None:
    catalog = open_catalog(stack.layout)
    assert "trades_v2" in [name for _, name in catalog.list_tables("market_data")]
    name = f"market_data.probe_{uuid.uuid4().hex[:6]}"
    table = catalog.create_table(
        name, Schema(NestedField(1, "id", LongType(), True), NestedField(2, "v", StringType(), False))
    )
    table.append(pa.Table.from_pylist([{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], table.schema().as_arrow()))
    again = open_catalog(stack.layout).load_table(name)
    assert sorted(again.scan().to_arrow().to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "v": "a"},
        {"id": 2, "v": "b"},
    ]
    catalog.drop_table(name)


def test_register_and_fetch_a_schema(stack: LocalStack) -> None:
    client = RegistryClient(stack.layout.endpoints.registry_url)
    schema_id = client.register("market.crypto.trades.binance-value", trade_v2_schema_text())
    assert json.loads(client.schema_text_by_id(schema_id))["name"] == "TradeV2"


def test_broker_sigkill_and_restart_keeps_messages_and_committed_offsets(healed: LocalStack) -> None:
    stack = healed
    bootstrap = stack.layout.endpoints.kafka_bootstrap
    topic = f"durable-{uuid.uuid4().hex[:8]}"
    asyncio.run(_produce(bootstrap, topic, 1000))
    assert len(asyncio.run(_consume(bootstrap, topic, "g-durable", 400, commit=True))) == 400

    stack.fault("broker", FaultAction.KILL)
    killed = _status(stack, "broker")
    assert killed.state is ServiceState.EXITED
    assert killed.exit_code == 137 and "SIGKILL" in killed.detail
    time.sleep(1)
    assert _status(stack, "broker").state is ServiceState.EXITED, "nothing restarts behind the user's back"

    stack.fault("broker", FaultAction.START)
    assert asyncio.run(_committed(bootstrap, topic, "g-durable")) == 400
    rest = asyncio.run(_consume(bootstrap, topic, "g-durable", 600, commit=False))
    assert rest == [f"m{i}".encode() for i in range(400, 1000)]


def test_a_killed_service_has_let_go_of_its_port_when_the_kill_returns(stack: LocalStack) -> None:
    """A start right after a SIGKILL (the fault scenarios' crash and restart) must find the port free."""
    port = stack.layout.settings.consumer.metrics_port
    stack.fault("consumer", FaultAction.KILL)
    try:
        assert port_is_free(port)
    finally:
        stack.fault("consumer", FaultAction.START)
    assert {s.name: s.state for s in stack.status()}["consumer"] is ServiceState.READY


def test_paused_object_store_times_out_and_resume_heals_it(healed: LocalStack) -> None:
    stack = healed
    bucket = stack.layout.settings.stack.warehouse_bucket
    stack.fault("object-store", FaultAction.PAUSE)
    assert _status(stack, "object-store").state is ServiceState.PAUSED
    from botocore.exceptions import BotoCoreError

    with pytest.raises(BotoCoreError, match=r"(?i)timeout"):
        _s3(stack, timeout=1.0).list_objects_v2(Bucket=bucket)

    # The broker keeps its log in a store of its own, so the lake's store going away does not stop it.
    topic = f"apart-{uuid.uuid4().hex[:8]}"
    asyncio.run(_produce(stack.layout.endpoints.kafka_bootstrap, topic, 10))
    assert _status(stack, "broker").state is ServiceState.READY

    stack.fault("object-store", FaultAction.RESUME)
    assert _s3(stack).list_objects_v2(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_partition_blocks_a_client_and_heal_restores_it(healed: LocalStack) -> None:
    stack = healed
    url = stack.layout.endpoints.registry_url + "/subjects"
    assert httpx.get(url, timeout=2).status_code == 200

    stack.fault("registry", FaultAction.PARTITION)
    assert _status(stack, "registry").state is ServiceState.PARTITIONED
    with pytest.raises(httpx.TimeoutException):
        httpx.get(url, timeout=1)

    stack.fault("registry", FaultAction.PARTITION, mode=Mode.RESET)
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=1)

    stack.fault("registry", FaultAction.HEAL)
    assert httpx.get(url, timeout=2).status_code == 200
    assert _status(stack, "registry").state is ServiceState.READY


def test_a_delayed_route_adds_latency(healed: LocalStack) -> None:
    stack = healed
    url = stack.layout.endpoints.registry_url + "/subjects"
    stack.fault("registry", FaultAction.PARTITION, mode=Mode.DELAY, delay_ms=300)
    started = time.monotonic()
    assert httpx.get(url, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_up_again_leaves_running_services_alone(stack: LocalStack) -> None:
    pids = {s.name: s.pid for s in stack.status()}
    report = stack.up()
    processes = {n for n, s in stack.specs.items() if s.command and not s.unavailable and not s.on_demand}
    assert set(report.already_running) == processes
    assert {s.name: s.pid for s in stack.status()} == pids


def test_env_exports_make_the_seed_catalog_snippet_work(stack: LocalStack, stack_env: dict[str, str]) -> None:
    script = (
        'eval "$(python -m k2tui env)" && python -c "'
        "from pyiceberg.catalog import load_catalog; "
        "t = load_catalog('k2').load_table('market_data.trades_v2'); "
        "print('snapshots', len(t.metadata.snapshots))\""
    )
    out = subprocess.run(
        ["bash", "-c", script], env=k2tui_env(stack_env), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("snapshots ")


def test_status_json_lists_every_service(stack: LocalStack, stack_env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "k2tui", "status", "--json"],
        env=k2tui_env(stack_env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    services = {s["name"]: s for s in json.loads(out.stdout)["services"]}
    assert set(services) == set(stack.specs)
    assert services["broker"]["state"] == "ready" and services["broker"]["pid"]


def test_prometheus_scrapes_every_metrics_endpoint(stack: LocalStack) -> None:
    spec = stack.specs["prometheus"]
    if spec.unavailable:
        pytest.skip(spec.unavailable)
    # Services run on demand (the streams) are scraped too, but only up while someone runs them.
    on_demand = {s.name for s in stack.specs.values() if s.metrics_target and s.on_demand}
    wanted = {s.name for s in stack.specs.values() if s.metrics_target} - on_demand
    url = stack.layout.endpoints.prometheus_url + "/api/v1/query"
    deadline = time.monotonic() + 15
    up: dict[str, str] = {}
    while time.monotonic() < deadline:
        result = httpx.get(url, params={"query": "up"}, timeout=5).json()["data"]["result"]
        up = {r["metric"]["job"]: r["value"][1] for r in result}
        if all(up.get(job) == "1" for job in wanted):
            break
        time.sleep(0.5)
    assert {job: up.get(job) for job in wanted} == dict.fromkeys(wanted, "1")
    assert on_demand <= set(up), f"no scrape job for {on_demand - set(up)}"
