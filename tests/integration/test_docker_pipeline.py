"""The pipeline's processes as containers (`stack.pipeline = "containers"`), from k2tui's own Dockerfile.

Every run checks the generated compose file as Compose reads it. With --pipeline-containers (about a
minute, so not in the suite's fifteen): the image is built from the Dockerfile on a stand-in for
python:3.11-slim that already holds k2tui's dependencies (--full-image-build: on a bare one, every
dependency from the package index); the broker, registry, object store and catalog run on this host as
the local backend runs them, since their upstream images cannot be pulled here; and the docker backend
runs the consumer, the API, the simulator and a stream service as containers of its compose project,
reaching those services at 127.0.0.1 as its processes on the host would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from k2tui.ingest.control import start_stream, stop_stream
from k2tui.ingest.topics import TOPICS
from k2tui.lake.catalog import ensure_trades_table, open_catalog, open_trades_table
from k2tui.model.trade import Exchange
from k2tui.stack.docker.services import HOST_SERVICES
from k2tui.stack.docker.stack import DockerStack
from k2tui.stack.services import local_services
from k2tui.stack.supervisor import FaultAction, LocalStack, ServiceState, StackError
from k2tui.validate.offsets import log_ends
from k2tui.validate.stages import read_kafka
from tests.integration.pipeline import ids_in_lake, until
from tests.integration.podman_engine import PodmanEngine, build_pipeline_image, build_python_image
from tests.integration.stack_fixture import throwaway_settings

PIPELINE_IMAGE = "localhost/k2test/k2tui:pipeline"


def test_the_generated_compose_file_runs_the_image_on_the_host_network_with_the_home_mounted(
    tmp_path: Path,
) -> None:
    settings, _ = throwaway_settings(tmp_path / "home")
    stack_settings = dataclasses.replace(settings.stack, pipeline="containers", pipeline_image="k2tui:test")
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text("services:\n  broker:\n    image: apache/kafka:3.9.1\n")
    stack = DockerStack(dataclasses.replace(settings, stack=stack_settings), compose_file=compose_file)
    assert stack.pipeline_file.is_file()
    # The generated file merged over the base, as compose reads it.
    services = stack.compose.config()["services"]
    assert set(services) == {"broker", *HOST_SERVICES}
    consumer = services["consumer"]
    assert (consumer["image"], consumer["network_mode"], consumer["command"][0]) == (
        "k2tui:test",
        "host",
        "consume",
    )
    home = str(stack.layout.home)
    assert [(v["source"], v["target"]) for v in consumer["volumes"]] == [(home, home)]
    assert set(consumer["depends_on"]) == {"broker"}  # what the base file has of what it waits on
    assert set(services["binance"]["depends_on"]) == {"broker", "simulator"}
    assert consumer["environment"]["K2_CONSUMER_METRICS_PORT"] == str(settings.consumer.metrics_port)


@pytest.fixture(scope="module")
def full_image_build(request: pytest.FixtureRequest) -> bool:
    """Whether --full-image-build; skips (before any engine starts) unless --pipeline-containers."""
    if not request.config.getoption("--pipeline-containers"):
        pytest.skip("the pipeline's containers run with --pipeline-containers (about a minute)")
    return bool(request.config.getoption("--full-image-build"))


@pytest.fixture(scope="module")
def image(full_image_build: bool, engine: PodmanEngine, tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("python-image")
    base = build_python_image(engine, directory, with_dependencies=not full_image_build)
    return build_pipeline_image(engine, base, PIPELINE_IMAGE)


@pytest.fixture(scope="module")
def pipeline(
    image: str, engine: PodmanEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerStack]:
    """The services on this host, and the docker backend about to run the pipeline as containers."""
    directory = tmp_path_factory.mktemp("pipeline")
    settings, _ = throwaway_settings(directory / "home")
    services = LocalStack(
        settings, [s for s in local_services(LocalStack(settings).layout) if s.name not in HOST_SERVICES]
    )
    compose_file = directory / "compose.yaml"
    compose_file.write_text("services: {}\n")
    streams = dataclasses.replace(settings.streams, source="sim", sim_rate=100.0)
    stack_settings = dataclasses.replace(
        settings.stack,
        compose_project=f"k2pipe{os.getpid()}",
        pipeline="containers",
        pipeline_image=image,
        catalog_uri=services.layout.endpoints.catalog_uri,
    )
    settings = dataclasses.replace(settings, stack=stack_settings, streams=streams)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", engine.docker_host)
        services.up()
        ensure_trades_table(open_catalog(services.layout))
        stack = DockerStack(settings, compose_file=compose_file)
        try:
            yield stack
        finally:
            stack.close()
            stack.down()
            services.down(purge=True)


def test_the_pipeline_runs_in_containers_of_the_image_and_writes_every_trade_once(
    pipeline: DockerStack,
) -> None:
    report = pipeline.up()
    assert set(report.ready_after_s) == {"consumer", "api"}  # the streams and the simulator run on demand
    states = {s.name: s for s in pipeline.status()}
    assert {name: states[name].state for name in HOST_SERVICES} == {
        "consumer": ServiceState.READY,
        "api": ServiceState.READY,
        "simulator": ServiceState.STOPPED,
        "binance": ServiceState.STOPPED,
        "kraken": ServiceState.STOPPED,
    }
    assert all(pipeline.expected_down(states[name]) for name in ("simulator", "binance", "kraken"))
    assert (
        states["consumer"].pid is not None
        and states["consumer"].address == pipeline.specs["consumer"].address
    )

    assert "started" in start_stream(pipeline, "binance")  # its container, and the simulator's it waits on
    assert pipeline.project.get("simulator").status == "running"
    # The consumer killed while trades flow into Kafka, and healed: it goes on from where the lake says.
    assert "killed (SIGKILL)" in pipeline.fault("consumer", FaultAction.KILL)
    killed = {s.name: s for s in pipeline.status()}["consumer"]
    assert killed.state is ServiceState.EXITED and killed.exit_code == 137
    assert pipeline.fault("consumer", FaultAction.HEAL) == "consumer: started"
    with pytest.raises(StackError, match="runs on the host's network"):
        pipeline.fault("consumer", FaultAction.PARTITION)
    stats = f"http://127.0.0.1:{pipeline.layout.settings.streams.binance_status_port}/stats"
    asyncio.run(until(lambda: httpx.get(stats, timeout=2).json()["streams"][0]["trades"] > 300, 60, "trades"))

    assert stop_stream(pipeline, "binance") == "binance: stopped"
    stopped = {s.name: s for s in pipeline.status()}["binance"]
    assert pipeline.expected_down(stopped), stopped
    bootstrap = pipeline.layout.endpoints.kafka_bootstrap
    ends = asyncio.run(log_ends(bootstrap, [TOPICS[Exchange.BINANCE]]))
    messages = asyncio.run(read_kafka(bootstrap, pipeline.layout.endpoints.registry_url, {}, ends))
    in_kafka = Counter(m.trade.message_id for m in messages if m.trade is not None)
    assert sum(in_kafka.values()) > 300
    table = open_trades_table(pipeline.layout)
    asyncio.run(
        until(lambda: sum(ids_in_lake(table).values()) >= len(in_kafka), 60, "every trade in the lake")
    )
    assert ids_in_lake(table) == Counter(dict.fromkeys(in_kafka, 1))  # each distinct trade exactly once
    logs = "\n".join(pipeline.last_log_lines("consumer", 50))
    assert "Traceback" not in logs


def test_without_the_image_up_says_how_to_build_it(pipeline: DockerStack) -> None:
    settings = pipeline.layout.settings
    missing = dataclasses.replace(settings.stack, pipeline_image="localhost/k2test/not-built:0")
    stack = DockerStack(dataclasses.replace(settings, stack=missing), compose_file=pipeline.compose.file)
    with pytest.raises(
        StackError, match=r"image localhost/k2test/not-built:0 is not built; .*docker build -t"
    ):
        stack.up()
