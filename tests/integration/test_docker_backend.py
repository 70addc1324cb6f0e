"""The docker backend on a real Docker Engine API (Podman's), through Compose and the docker SDK.

A two-service Compose project (a Kafka-protocol broker keeping its log in an S3 store, both built
locally) is brought up by `DockerStack`; every fault primitive is applied to it and seen from a Kafka
client on the host; containers outside the project are proved untouched; and the broker is restarted
while a producer and a consumer run, with exact counts afterwards. The shipped upstream compose file
is checked against the settings with `docker compose config` (no engine needed for that).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.server
import json
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from k2tui.config import resolve_settings
from k2tui.consume.metrics import ConsumerMetrics
from k2tui.stack.binaries import MissingBinaryError
from k2tui.stack.docker.compose import (
    COMPOSE_FILE,
    PROMETHEUS_CONFIG,
    PROMETHEUS_RULES,
    Compose,
    catalog_database,
    compose_command,
    compose_env,
)
from k2tui.stack.docker.containers import PROJECT_LABEL, SERVICE_LABEL
from k2tui.stack.docker.services import container_prometheus_config, container_services
from k2tui.stack.docker.stack import RULES_IN_CONTAINER, DockerStack, docker_settings
from k2tui.stack.layout import StackLayout
from k2tui.stack.probes import NotReady, kafka_metadata
from k2tui.stack.proxy import Mode
from k2tui.stack.services import ALERT_RULES
from k2tui.stack.supervisor import FaultAction, ServiceState, StackError
from tests.integration.podman_engine import (
    PodmanEngine,
    build_prometheus_image,
    build_tools_image,
    two_service_compose,
)
from tests.integration.stack_fixture import throwaway_settings

pytestmark = pytest.mark.integration


# ---- the shipped compose file (no engine) ---------------------------------------------------------


def _resolved_upstream(settings_env: dict[str, str], home: Path) -> tuple[Any, dict[str, Any]]:
    try:
        compose_command()
    except MissingBinaryError as error:
        pytest.skip(f"no docker compose here: {error}")
    settings = docker_settings(resolve_settings(env=settings_env).settings)
    compose = Compose(COMPOSE_FILE, settings.stack.compose_project, compose_env(settings, home))
    return settings, compose.config()


def _published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """container port → (host address, host port)."""
    return {int(p["target"]): (p.get("host_ip", ""), int(p["published"])) for p in service.get("ports", [])}


def test_the_shipped_compose_file_agrees_with_the_settings(tmp_path: Path) -> None:
    env = {
        "K2_STACK_KAFKA_PORT": "29092",
        "K2_REGISTRY_PORT": "28081",
        "K2_STACK_S3_PORT": "29000",
        "K2_STACK_PROMETHEUS_PORT": "29090",
        "K2_STACK_GRAFANA_PORT": "23000",
        "K2_STACK_S3_ACCESS_KEY": "someone",
        "K2_STACK_S3_SECRET_KEY": "some-long-secret",
        "K2_STACK_CATALOG_URI": "postgresql+psycopg://iceberg:pw@127.0.0.1:25432/lake",
        "K2_STACK_COMPOSE_PROJECT": "k2check",
    }
    settings, config = _resolved_upstream(env, tmp_path)
    services = config["services"]
    layout = StackLayout(settings)
    assert config["name"] == "k2check"
    assert list(services) == [s.name for s in container_services(layout, list(services))]
    assert set(services) == {"broker", "registry", "object-store", "catalog", "prometheus", "grafana"}
    assert all("healthcheck" in service for service in services.values())

    broker = services["broker"]
    assert _published(broker) == {9094: ("127.0.0.1", 29092)}
    advertised = broker["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "HOST://127.0.0.1:29092" in advertised  # clients on the host are sent back to the published port
    assert "PLAINTEXT://broker:9092" in advertised
    assert "HOST://:9094" in broker["environment"]["KAFKA_LISTENERS"]
    registry = services["registry"]
    assert _published(registry) == {8081: ("127.0.0.1", 28081)}
    assert (
        registry["environment"]["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"] == "PLAINTEXT://broker:9092"
    )
    store = services["object-store"]
    assert _published(store) == {9000: ("127.0.0.1", 29000)}
    assert store["environment"] == {"MINIO_ROOT_USER": "someone", "MINIO_ROOT_PASSWORD": "some-long-secret"}
    catalog = services["catalog"]
    assert _published(catalog) == {5432: ("127.0.0.1", 25432)}
    assert catalog["environment"] == {
        "POSTGRES_USER": "iceberg",
        "POSTGRES_PASSWORD": "pw",
        "POSTGRES_DB": "lake",
    }
    # Prometheus and Grafana on the host's network, so the scrape reaches the processes' 127.0.0.1.
    prometheus = services["prometheus"]
    assert prometheus["network_mode"] == "host" and not prometheus.get("ports")
    assert "--web.listen-address=127.0.0.1:29090" in prometheus["command"]
    assert "127.0.0.1:29090" in " ".join(prometheus["healthcheck"]["test"])
    mounts = {v["target"]: v["source"] for v in prometheus["volumes"] if v["type"] == "bind"}
    assert mounts["/etc/prometheus/prometheus.yml"] == str(tmp_path / PROMETHEUS_CONFIG)
    assert mounts[RULES_IN_CONTAINER] == str(tmp_path / PROMETHEUS_RULES)
    grafana = services["grafana"]
    assert grafana["network_mode"] == "host" and not grafana.get("ports")
    assert grafana["environment"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert grafana["environment"]["GF_SERVER_HTTP_PORT"] == "23000"
    assert grafana["environment"]["PROMETHEUS_URL"] == "http://127.0.0.1:29090"
    datasources = (COMPOSE_FILE.parent / "grafana" / "provisioning" / "datasources" / "k2.yaml").read_text()
    assert "url: ${PROMETHEUS_URL}" in datasources

    # What the code's endpoints say, the compose file serves.
    endpoints = layout.endpoints
    assert endpoints.kafka_bootstrap == "127.0.0.1:29092"
    assert endpoints.registry_url == "http://127.0.0.1:28081"
    assert endpoints.s3_endpoint == "http://127.0.0.1:29000"
    assert endpoints.prometheus_url == "http://127.0.0.1:29090"
    assert catalog_database(endpoints.catalog_uri).port == 25432


def test_the_shipped_defaults_are_the_default_settings(tmp_path: Path) -> None:
    """The compose file run by hand (no variables) is the stack the default settings describe."""
    settings, config = _resolved_upstream({}, tmp_path)
    by_hand = Compose(COMPOSE_FILE, "k2", {}).config()
    generated = config | {"services": {n: s for n, s in config["services"].items() if n != "prometheus"}}
    hand = by_hand | {"services": {n: s for n, s in by_hand["services"].items() if n != "prometheus"}}
    assert hand == generated
    layout = StackLayout(settings)
    shipped = COMPOSE_FILE.parent
    assert (shipped / PROMETHEUS_CONFIG).read_text() == container_prometheus_config(
        layout, RULES_IN_CONTAINER
    )
    assert (shipped / PROMETHEUS_RULES).read_text() == ALERT_RULES
    assert "127.0.0.1:19094" in (shipped / PROMETHEUS_CONFIG).read_text()


def test_the_grafana_dashboard_charts_metrics_the_consumer_exports() -> None:
    dashboard = json.loads((COMPOSE_FILE.parent / "grafana" / "dashboards" / "k2.json").read_text())
    queries = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    exported = {metric.name for metric in ConsumerMetrics().registry.collect()}
    for name in (
        "k2_messages_consumed",
        "k2_consumer_lag",
        "k2_iceberg_write_duration_seconds",
        "k2_dlq_messages",
        "k2_sequence_gaps",
    ):
        assert name in exported
        assert name in queries
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("throughput", "lag", "commit latency", "dead-letter", "gaps"):
        assert topic in titles


# ---- a real engine ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(engine: PodmanEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerStack]:
    """The two-service project up and healthy, the SDK and compose pointed at the engine."""
    directory = tmp_path_factory.mktemp("compose")
    compose_file = directory / "compose.yaml"
    compose_file.write_text(two_service_compose(build_tools_image(engine, directory)))
    settings, _ = throwaway_settings(directory / "home")
    stack_settings = dataclasses.replace(settings.stack, compose_project=f"k2test{os.getpid()}")
    settings = dataclasses.replace(settings, stack=stack_settings)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", engine.docker_host)
        stack = DockerStack(settings, compose_file=compose_file, processes=[])
        try:
            stack.up()
            yield stack
        finally:
            stack.close()
            stack.down()


@pytest.fixture(scope="module")
def outsiders(engine: PodmanEngine, project: DockerStack) -> Iterator[list[Any]]:
    """Two running containers the stack must never touch: one with no compose label, and one of another
    project that even has a service called broker."""
    client = engine.client()
    command = ["/tansu", "broker", "--listener-url=tcp://0.0.0.0:9092", "--storage-engine=memory://tansu/"]
    suffix = os.getpid()
    other_project = {PROJECT_LABEL: f"k2other{suffix}", SERVICE_LABEL: "broker"}
    names = {f"k2test-outsider-{suffix}": {}, f"k2test-other-project-broker-{suffix}": other_project}
    try:
        yield [
            client.containers.run(project_image(project), command, name=name, detach=True, labels=labels)
            for name, labels in names.items()
        ]
    finally:
        for container in client.containers.list(all=True):
            if container.name in names:
                container.remove(force=True)


def project_image(stack: DockerStack) -> str:
    return stack.project.get("broker").image.tags[0]


def _state(stack: DockerStack, name: str = "broker") -> Any:
    return next(s for s in stack.status() if s.name == name)


def _answers(stack: DockerStack, within: float = 2.0) -> bool:
    """Whether a Kafka client on the host gets metadata from the broker through the published port."""
    try:
        asyncio.run(kafka_metadata(stack.layout.endpoints.kafka_bootstrap)(within))
    except (NotReady, TimeoutError):
        return False
    return True


def test_up_brings_every_service_up_and_the_broker_answers_on_the_settings_port(project: DockerStack) -> None:
    broker = _state(project)
    assert broker.state is ServiceState.READY, broker.detail
    assert broker.pid is not None and broker.uptime_s is not None
    assert broker.address == project.layout.endpoints.kafka_bootstrap
    assert _state(project, "broker-store").state is ServiceState.READY
    assert _answers(project)


def test_pause_then_heal(project: DockerStack) -> None:
    assert "paused" in project.fault("broker", FaultAction.PAUSE)
    assert _state(project).state is ServiceState.PAUSED
    assert not _answers(project)
    assert project.fault("broker", FaultAction.HEAL) == "broker: unpaused"
    assert _state(project).state is ServiceState.READY
    assert _answers(project)


def test_resume_undoes_a_pause(project: DockerStack) -> None:
    project.fault("broker", FaultAction.PAUSE)
    assert "unpaused" in project.fault("broker", FaultAction.RESUME)
    assert _answers(project)


def test_kill_shows_the_exit_code_and_heal_starts_it(project: DockerStack) -> None:
    project.fault("broker", FaultAction.KILL)
    broker = _state(project)
    assert broker.state is ServiceState.EXITED
    assert broker.exit_code == 137 and "SIGKILL" in broker.detail
    assert broker.pid is None
    assert not _answers(project)
    assert project.fault("broker", FaultAction.HEAL) == "broker: started"
    assert _state(project).state is ServiceState.READY
    assert _answers(project)


def test_stop_then_start(project: DockerStack) -> None:
    assert "stopped" in project.fault("broker", FaultAction.STOP)
    assert _state(project).state is ServiceState.EXITED
    assert not _answers(project)
    assert project.fault("broker", FaultAction.START) == "broker is running and ready"
    assert _answers(project)


def test_partition_disconnects_the_container_and_heal_reconnects_it(project: DockerStack) -> None:
    network = f"{project.compose.project}_default"
    assert project.fault("broker", FaultAction.PARTITION) == f"broker: disconnected from {network}"
    broker = _state(project)
    assert broker.state is ServiceState.PARTITIONED and broker.pid is not None
    assert not _answers(project)
    assert project.fault("broker", FaultAction.HEAL) == "broker: reconnected"
    assert _state(project).state is ServiceState.READY
    assert _answers(project)


def test_heal_mends_a_container_both_paused_and_partitioned(project: DockerStack) -> None:
    project.fault("broker", FaultAction.PARTITION)
    project.fault("broker", FaultAction.PAUSE)
    assert _state(project).state is ServiceState.PAUSED
    assert project.fault("broker", FaultAction.HEAL) == "broker: unpaused, reconnected"
    assert _state(project).state is ServiceState.READY
    assert _answers(project)


def test_a_partition_mode_only_the_proxy_has_is_refused(project: DockerStack) -> None:
    with pytest.raises(StackError, match="local backend's proxy"):
        project.fault("broker", FaultAction.PARTITION, mode=Mode.DELAY)
    assert _state(project).state is ServiceState.READY


def test_restart_comes_back_ready(project: DockerStack) -> None:
    project.restart("broker")
    broker = _state(project)
    assert broker.state is ServiceState.READY
    assert broker.uptime_s is not None and broker.uptime_s < 30
    assert any("tansu broker" in line for line in project.last_log_lines("broker", 50))


def test_no_action_reaches_a_container_outside_the_project(
    project: DockerStack, outsiders: list[Any]
) -> None:
    def fingerprint(container: Any) -> tuple[Any, ...]:
        container.reload()
        state = container.attrs["State"]
        return (
            state["Status"],
            state["StartedAt"],
            state["Pid"],
            tuple(container.attrs["NetworkSettings"]["Networks"]),
        )

    before = [fingerprint(c) for c in outsiders]
    for action in (
        FaultAction.PAUSE,
        FaultAction.HEAL,
        FaultAction.PARTITION,
        FaultAction.HEAL,
        FaultAction.KILL,
        FaultAction.HEAL,
        FaultAction.STOP,
        FaultAction.START,
    ):
        project.fault("broker", action)
    project.restart("broker")
    assert [fingerprint(c) for c in outsiders] == before
    assert all(c.attrs["State"]["Status"] == "running" for c in outsiders)

    names = {s.name for s in project.status()}
    assert names == {"broker", "broker-store"}
    for container in outsiders:
        with pytest.raises(StackError, match="no service"):
            project.fault(container.name, FaultAction.KILL)
    assert {c.name for c in project.project.containers()}.isdisjoint({c.name for c in outsiders})


def _events_until(stack: DockerStack, since: float, enough: Any, within: float = 15.0) -> list[Any]:
    deadline = time.monotonic() + within
    while True:
        seen = stack.events(since)
        if enough(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def test_container_events_are_streamed_for_the_project_only(
    project: DockerStack, outsiders: list[Any]
) -> None:
    since = time.time() - 0.001
    other_broker = outsiders[1]  # another project's service called broker
    other_broker.pause()
    other_broker.unpause()
    project.fault("broker", FaultAction.PAUSE)
    project.fault("broker", FaultAction.RESUME)
    project.fault("broker", FaultAction.KILL)
    project.fault("broker", FaultAction.HEAL)

    def complete(seen: list[Any]) -> bool:
        actions = [e.action for e in seen if e.service == "broker"]
        return {"pause", "unpause", "die", "start"} <= set(actions)

    seen = _events_until(project, since, complete)
    broker = [e for e in seen if e.service == "broker"]
    actions = [e.action for e in broker]
    assert {"pause", "unpause", "die", "start"} <= set(actions), actions
    assert actions.count("pause") == 1 and actions.count("unpause") == 1  # not the other project's
    assert actions.index("pause") < actions.index("unpause") < actions.index("die")
    assert all(e.time > since for e in seen)
    died = next(e for e in broker if e.action == "die")
    assert died.detail == "exit code 137"
    assert {e.service for e in seen} <= {"broker", "broker-store"}


# ---- the broker restarted under traffic ---------------------------------------------------------


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()


async def _produce_all(
    bootstrap: str, topic: str, count: int, sent: list[str], retried: list[int], third: asyncio.Event
) -> None:
    """Send m0..m{count-1} one after another, each until acknowledged (acks=all); a failed send is retried.
    `third` is set once a third of them are acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=3000)
    await producer.start()
    try:
        for i in range(count):
            while True:
                try:
                    await producer.send_and_wait(topic, key=f"k{i % 7}".encode(), value=f"m{i}".encode())
                    break
                except KafkaError:
                    retried.append(i)
                    await asyncio.sleep(0.2)
            sent.append(f"m{i}")
            if len(sent) == count // 3:
                third.set()
            await asyncio.sleep(0.001)
    finally:
        await producer.stop()


async def _consume_until(bootstrap: str, topic: str, wanted: int, within: float) -> list[str]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", request_timeout_ms=5000
    )
    await consumer.start()
    values: list[str] = []
    try:
        deadline = time.monotonic() + within
        while len(set(values)) < wanted and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                values.extend(r.value.decode() for r in records)
    finally:
        await consumer.stop()
    return values


async def _whole_log(bootstrap: str, topic: str, within: float = 30) -> list[str]:
    """Every record in the topic, read from the start up to each partition's high watermark."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    values: list[str] = []
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(r.value.decode() for r in records)
            assigned = consumer.assignment()
            marks = {tp: consumer.highwater(tp) for tp in assigned}
            positions = {tp: await consumer.position(tp) for tp in assigned}
            if assigned and all(m is not None and positions[tp] >= m for tp, m in marks.items()):
                break
    finally:
        await consumer.stop()
    return values


def test_the_broker_restarted_under_traffic_loses_nothing(project: DockerStack) -> None:
    bootstrap = project.layout.endpoints.kafka_bootstrap
    topic = f"restart-{os.getpid()}"
    count = 1500
    sent: list[str] = []
    retried: list[int] = []
    sent_at_restart: list[int] = []

    async def scenario() -> tuple[list[str], float]:
        await _create_topic(bootstrap, topic)
        third = asyncio.Event()
        producing = asyncio.create_task(_produce_all(bootstrap, topic, count, sent, retried, third))
        consuming = asyncio.create_task(_consume_until(bootstrap, topic, count, within=90))
        await third.wait()
        began = time.monotonic()
        sent_at_restart.append(len(sent))
        await asyncio.to_thread(project.restart, "broker")
        sent_at_restart.append(len(sent))
        restart_s = time.monotonic() - began
        await producing
        return await consuming, restart_s

    consumed, restart_s = asyncio.run(scenario())
    everything = {f"m{i}" for i in range(count)}
    assert sent_at_restart[0] < count  # the broker went down while the producer was still sending
    assert len(sent) == count  # every message acknowledged (acks=all) in the end
    assert set(consumed) == everything  # the consumer running across the restart lost nothing
    log = asyncio.run(_whole_log(bootstrap, topic))
    assert set(log) == everything
    # Without an idempotent producer (the broker has none), a send whose acknowledgement the restart cut
    # off is sent again: only a message in flight while the broker was down may be in the log twice.
    doubled = {value: n for value, n in Counter(log).items() if n > 1}
    in_flight = {f"m{i}" for i in range(sent_at_restart[0], sent_at_restart[1] + 1)}
    assert set(doubled) <= in_flight and all(n == 2 for n in doubled.values()), doubled
    assert len(log) == count + len(doubled)
    duplicates = len(doubled)
    print(
        f"broker restart under traffic: {restart_s:.1f} s, {sent_at_restart[1] - sent_at_restart[0]} "
        f"messages acknowledged during it, {len(retried)} sends retried, {duplicates} doubled, log {len(log)}"
    )


def test_down_removes_the_project_and_nothing_else(project: DockerStack, outsiders: list[Any]) -> None:
    stopped = project.down()
    assert set(stopped) == {"broker", "broker-store"}
    states = {s.name: s.state for s in project.status()}
    assert states == {"broker": ServiceState.STOPPED, "broker-store": ServiceState.STOPPED}
    for container in outsiders:
        container.reload()
        assert container.status == "running"


def test_prometheus_on_the_host_network_scrapes_a_process_that_listens_on_127_0_0_1(
    engine: PodmanEngine, tmp_path: Path
) -> None:
    """As the shipped compose file runs it: a container on the host's network reaches what the pipeline's
    processes serve on 127.0.0.1, which a container on the project's network could not."""
    image = build_prometheus_image(engine, tmp_path)
    if image is None:
        pytest.skip("Prometheus is not installed here (apt-get install prometheus): its container is not run")
    with _metrics_server() as metrics_port:
        web_port = _free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs: [{job_name: host-process, static_configs: "
            f"[{{targets: ['127.0.0.1:{metrics_port}']}}]}}]\n"
        )
        compose_file = tmp_path / "compose.yaml"
        compose_file.write_text(
            f"""services:
  prometheus:
    image: {image}
    network_mode: host
    entrypoint: ["/usr/bin/prometheus", "--config.file=/etc/prometheus.yml", "--storage.tsdb.path=/tmp/tsdb",
                 "--web.listen-address=127.0.0.1:{web_port}"]
    volumes: ["{config}:/etc/prometheus.yml:ro"]
    tmpfs: [/tmp]
"""
        )
        compose = Compose(compose_file, f"k2prom{os.getpid()}", {"DOCKER_HOST": engine.docker_host})
        compose.run("up", "--detach", "--wait")
        try:
            up = _until_scraped(f"http://127.0.0.1:{web_port}", 30)
        finally:
            compose.run("down", "--volumes", "--timeout", "2")
    assert up == {"instance": f"127.0.0.1:{metrics_port}", "job": "host-process"}


@contextlib.contextmanager
def _metrics_server() -> Iterator[int]:
    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"k2_probe_total 1\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def _free_port() -> int:
    """A port below the ephemeral range, free now."""
    for port in range(random.randrange(24000, 30000), 32000):
        with contextlib.closing(socket.socket()) as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port below 32000")


def _until_scraped(prometheus_url: str, within: float) -> dict[str, str]:
    """The labels of the target whose `up` is 1, once Prometheus has scraped it."""
    deadline = time.monotonic() + within
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(
                f"{prometheus_url}/api/v1/query", params={"query": "up == 1"}, timeout=2
            ).json()
            results = answer["data"]["result"]
            if results:
                return {k: v for k, v in results[0]["metric"].items() if k != "__name__"}
            last = str(answer)
        except (httpx.HTTPError, ValueError, KeyError) as error:
            last = str(error)
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never scraped the host process within {within:g} s: {last}")
