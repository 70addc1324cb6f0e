"""The docker backend's own logic, without an engine: what a container's state means, which events and
containers belong to the project, the catalog URI it needs, and choosing a backend."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from k2tui import __version__
from k2tui.cli import cli
from k2tui.config import SettingsError, load_settings
from k2tui.stack.backend import open_stack
from k2tui.stack.docker.compose import DEFAULT_CATALOG_URI, catalog_database, compose_env
from k2tui.stack.docker.containers import (
    PROJECT_LABEL,
    SERVICE_LABEL,
    ContainerFacts,
    ProjectContainers,
    event_from_engine,
    read_state,
)
from k2tui.stack.docker.pipeline import container_command, pipeline_compose
from k2tui.stack.docker.services import pipeline_services
from k2tui.stack.docker.stack import DockerStack
from k2tui.stack.layout import StackLayout
from k2tui.stack.services import local_services
from k2tui.stack.supervisor import LocalStack, ServiceState, StackError


def inspect(
    status: str = "running",
    *,
    health: str | None = None,
    output: str = "",
    paused: bool = False,
    exit_code: int = 0,
    networks: tuple[str, ...] = ("k2_default",),
    mode: str = "bridge",
    project: str = "k2",
) -> dict[str, Any]:
    """A container inspect document shaped like the engine's."""
    state: dict[str, Any] = {
        "Status": status,
        "Paused": paused,
        "Pid": 4242 if status == "running" else 0,
        "ExitCode": exit_code,
        "StartedAt": "2026-11-22T06:46:58.701688653Z",
        "FinishedAt": "2026-11-22T07:00:01.5Z" if status == "exited" else "0001-01-01T00:00:00Z",
    }
    if health is not None:
        state["Health"] = {"Status": health, "Log": [{"Output": output}] if output else None}
    return {
        "Name": "/k2-broker-1",
        "State": state,
        "Config": {"Labels": {PROJECT_LABEL: project, SERVICE_LABEL: "broker"}},
        "NetworkSettings": {"Networks": {name: {} for name in networks}},
        "HostConfig": {"NetworkMode": mode},
    }


def reading(**kwargs: Any) -> Any:
    return read_state(ContainerFacts.from_inspect(inspect(**kwargs)))


def test_running_and_healthy_or_without_a_health_check_is_ready() -> None:
    assert reading(health="healthy").state is ServiceState.READY
    assert reading(health="").state is ServiceState.READY
    assert reading().state is ServiceState.READY


def test_a_starting_or_failing_health_check_is_not_ready_and_says_what_it_saw() -> None:
    assert reading(health="starting").detail == "health check starting"
    failing = reading(health="unhealthy", output="connecting...\nconnection refused\n")
    assert failing.state is ServiceState.NOT_READY
    assert failing.detail == "unhealthy: connection refused"


def test_paused_however_the_engine_puts_it() -> None:
    assert reading(status="paused").state is ServiceState.PAUSED
    assert reading(paused=True, health="healthy").state is ServiceState.PAUSED


def test_exited_carries_its_code_and_signal() -> None:
    killed = reading(status="exited", exit_code=137)
    assert killed.state is ServiceState.EXITED
    assert killed.exit_code == 137
    assert killed.detail.startswith("exited with code 137 (SIGKILL) at ")


def test_off_its_network_is_partitioned_but_host_networking_is_not() -> None:
    assert reading(networks=()).state is ServiceState.PARTITIONED
    assert reading(networks=(), mode="host").state is ServiceState.READY
    assert reading(networks=(), mode="container:abc").state is ServiceState.READY
    assert reading(status="exited", networks=()).state is ServiceState.EXITED
    paused_off_network = ContainerFacts.from_inspect(inspect(status="paused", networks=()))
    assert read_state(paused_off_network).state is ServiceState.PAUSED and paused_off_network.partitioned


def test_no_container_or_one_never_started_is_stopped() -> None:
    assert read_state(None).state is ServiceState.STOPPED
    assert reading(status="created").state is ServiceState.STOPPED


def test_engine_times_with_nanoseconds_and_the_zero_time() -> None:
    facts = ContainerFacts.from_inspect(inspect(status="running"))
    assert facts.started_at == pytest.approx(1795330018.701688)
    assert facts.finished_at is None


def engine_event(
    action: str, project: str = "k2", kind: str = "container", **attributes: str
) -> dict[str, Any]:
    labels = {PROJECT_LABEL: project, SERVICE_LABEL: "broker", "name": "k2-broker-1"}
    return {
        "Type": kind,
        "Action": action,
        "Actor": {"ID": "abc", "Attributes": (labels if kind == "container" else {}) | attributes},
        "time": 1795330018,
        "timeNano": 1795330018500000000,
    }


def test_events_of_the_project_become_lines_for_the_event_log() -> None:
    died = event_from_engine(engine_event("die", exitCode="137"), "k2", {})
    assert died is not None
    assert (died.service, died.action, died.detail) == ("broker", "die", "exit code 137")
    assert died.time == pytest.approx(1795330018.5)
    assert died.describe() == "broker die (exit code 137)"
    healthy = event_from_engine(engine_event("health_status: healthy"), "k2", {})
    assert healthy is not None and (healthy.action, healthy.detail) == ("health_status", "healthy")


def test_events_of_another_project_or_of_health_check_execs_are_dropped() -> None:
    assert event_from_engine(engine_event("die", project="other"), "k2", {}) is None
    assert event_from_engine(engine_event("exec_start: /tansu topic list"), "k2", {}) is None


def test_a_network_event_names_the_service_only_for_the_project_s_containers() -> None:
    event = engine_event("disconnect", kind="network", container="c1", name="k2_default")
    found = event_from_engine(event, "k2", {"c1": "broker"})
    assert found is not None and (found.service, found.detail) == ("broker", "network k2_default")
    assert event_from_engine(event, "k2", {"c2": "registry"}) is None


class FakeContainer:
    def __init__(self, name: str, labels: dict[str, str]) -> None:
        self.name = name
        self.labels = labels


class EngineIgnoringFilters:
    """An engine that answers a label-filtered list with every container it has."""

    def __init__(self, containers: list[FakeContainer]) -> None:
        self.containers = self
        self.everything = containers
        self.filters: list[Any] = []

    def list(self, all: bool, filters: dict[str, str]) -> list[FakeContainer]:
        self.filters.append(filters)
        return self.everything


def test_only_containers_carrying_the_project_label_are_found() -> None:
    ours = FakeContainer("k2-broker-1", {PROJECT_LABEL: "k2", SERVICE_LABEL: "broker"})
    theirs = FakeContainer("x-broker-1", {PROJECT_LABEL: "x", SERVICE_LABEL: "broker"})
    loose = FakeContainer("loose", {})
    engine = EngineIgnoringFilters([theirs, loose, ours])
    project = ProjectContainers(engine, "k2")
    assert project.containers() == [ours]
    assert project.get("broker") is ours
    assert engine.filters[0] == {"label": f"{PROJECT_LABEL}=k2"}
    with pytest.raises(StackError, match="no container for 'loose'"):
        project.get("loose")


def test_the_catalog_is_postgresql_on_this_host_or_a_sqlite_file() -> None:
    default = catalog_database(DEFAULT_CATALOG_URI)
    assert default is not None and default.port == 15432
    parsed = catalog_database("postgresql://ice%40berg:p%2Fw@localhost:5433/lake")
    assert parsed is not None
    assert (parsed.user, parsed.password, parsed.database, parsed.port) == ("ice@berg", "p/w", "lake", 5433)
    assert catalog_database("sqlite:////tmp/k2.sqlite3") is None
    with pytest.raises(
        StackError, match=r"stack\.catalog_uri .* must be empty, .* not 'postgresql://k2:pw@db\."
    ):
        catalog_database("postgresql://k2:pw@db.example:5432/k2")


def test_compose_gets_the_settings_ports_and_keys(tmp_path: Path) -> None:
    settings = load_settings(env={"K2_STACK_KAFKA_PORT": "29092", "K2_STACK_S3_SECRET_KEY": "s3cr3t-long"})
    env = compose_env(DockerStack(settings, processes=[]).layout.settings, tmp_path)
    assert env["KAFKA_PORT"] == "29092" and env["S3_SECRET_KEY"] == "s3cr3t-long"
    assert env["CATALOG_PORT"] == "15432" and env["PROMETHEUS_CONFIG"] == str(tmp_path / "prometheus.yml")


def test_the_backend_comes_from_the_setting_or_the_flag() -> None:
    assert isinstance(open_stack(load_settings(env={})), LocalStack)
    docker = open_stack(load_settings(env={"K2_STACK_BACKEND": "docker"}))
    assert isinstance(docker, DockerStack)
    assert docker.layout.settings.stack.catalog_uri == DEFAULT_CATALOG_URI
    assert isinstance(open_stack(load_settings(env={}), "docker"), DockerStack)
    assert set(docker.host.specs) <= {"consumer", "api", "simulator", "binance", "kraken"}
    assert "consumer" in docker.host.specs and "broker" not in docker.host.specs


def test_status_without_an_engine_is_one_sentence_and_exit_code_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["status", "--backend", "docker"],
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock", "K2_HOME": str(tmp_path)},
    )
    assert result.exit_code == 1
    assert "cannot reach the Docker engine" in result.output
    assert "Traceback" not in result.output


def test_the_pipeline_containers_run_the_host_commands_settings_and_health_urls(tmp_path: Path) -> None:
    settings = load_settings(env={"K2_HOME": str(tmp_path), "K2_STACK_PIPELINE": "containers"})
    layout = StackLayout(settings)
    specs = pipeline_services(layout)
    compose = pipeline_compose(layout, specs, "k2tui:test", others=["broker", "registry"])["services"]
    assert list(compose) == [spec.name for spec in specs]
    for spec in specs:
        service = compose[spec.name]
        assert ["python", "-m", "k2tui", *service["command"]] == ["python", "-m", "k2tui", *spec.command[3:]]
        assert spec.command[:3] == [sys.executable, "-m", "k2tui"]
        assert service["environment"] == spec.env and service["network_mode"] == "host"
        assert service["healthcheck"]["test"][-1] == spec.health_url
        assert " " not in service["healthcheck"]["test"][-2]
        assert service["volumes"] == [f"{tmp_path}:{tmp_path}"]
    assert compose["consumer"]["depends_on"] == {
        "broker": {"condition": "service_healthy"},
        "registry": {"condition": "service_healthy"},
    }  # the catalog is not a service of this project: nothing to wait on
    assert compose["consumer"]["environment"]["K2_HOME"] == str(tmp_path)


def test_only_k2tui_commands_become_containers(tmp_path: Path) -> None:
    layout = StackLayout(load_settings(env={"K2_HOME": str(tmp_path)}))
    broker = next(spec for spec in local_services(layout) if spec.name == "broker")
    with pytest.raises(ValueError, match="broker does not run k2tui"):
        container_command(broker)


def test_the_pipeline_in_containers_is_a_setting_checked_like_the_others() -> None:
    with pytest.raises(SettingsError, match=r"stack\.pipeline"):
        load_settings(env={"K2_STACK_PIPELINE": "kubernetes"})
    assert load_settings().stack.pipeline_image == f"k2tui:{__version__}"
