"""The docker backend: the stack's services as containers of one Compose project, on upstream images,
brought up with Compose and watched and faulted through the Docker API; the pipeline's own processes
(consumer, API, streams) run on this host under the local supervisor, or, with `stack.pipeline =
"containers"`, as containers of the same project from the image k2tui's Dockerfile builds.

It answers the same calls as `LocalStack`, so the CLI, the validation suite and the cockpit use it
unchanged. Only containers carrying the project's label are ever acted on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from k2tui.config import Settings
from k2tui.stack.docker.compose import (
    COMPOSE_FILE,
    DEFAULT_CATALOG_URI,
    PROMETHEUS_CONFIG,
    PROMETHEUS_RULES,
    Compose,
    compose_env,
    tail,
)
from k2tui.stack.docker.containers import ContainerFacts, EventFeed, ProjectContainers, read_state
from k2tui.stack.docker.pipeline import PIPELINE_FILE, write_pipeline_compose
from k2tui.stack.docker.services import (
    container_prometheus_config,
    container_services,
    host_services,
    pipeline_services,
)
from k2tui.stack.events import StackEvent
from k2tui.stack.layout import REGION, StackLayout
from k2tui.stack.probes import NotReady, s3_client, wait_ready
from k2tui.stack.proxy import Mode
from k2tui.stack.services import ALERT_RULES, ServiceSpec
from k2tui.stack.supervisor import (
    FaultAction,
    LocalStack,
    Progress,
    ServiceState,
    ServiceStatus,
    StackError,
    StartReport,
    _quiet,
)

RULES_IN_CONTAINER = "/etc/prometheus/rules.yml"
_BUCKET_THERE = ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")


def docker_settings(settings: Settings) -> Settings:
    """The settings as the docker backend runs them: its catalog is the PostgreSQL container unless set."""
    stack = dataclasses.replace(
        settings.stack, backend="docker", catalog_uri=settings.stack.catalog_uri or DEFAULT_CATALOG_URI
    )
    return dataclasses.replace(settings, stack=stack)


class DockerStack:
    backend = "docker"

    def __init__(
        self,
        settings: Settings,
        *,
        compose_file: Path = COMPOSE_FILE,
        processes: list[ServiceSpec] | None = None,
    ) -> None:
        """`processes`: the pipeline's processes run on this host (default: consumer, API, streams, unless
        stack.pipeline puts them in containers)."""
        settings = docker_settings(settings)
        self.layout = StackLayout(settings)
        self.config_dir = self.layout.home / "stack" / "docker"
        in_containers = settings.stack.pipeline == "containers"
        self.pipeline = {spec.name: spec for spec in pipeline_services(self.layout)} if in_containers else {}
        """The pipeline's processes run as containers of the project, by name."""
        self.pipeline_file = self.config_dir / PIPELINE_FILE
        base = Compose(compose_file, settings.stack.compose_project, compose_env(settings, self.config_dir))
        if self.pipeline:
            self._base_services = base.services()
            self._write_pipeline()
        self.compose = dataclasses.replace(base, overlays=(self.pipeline_file,) if self.pipeline else ())
        if processes is None:
            processes = [] if in_containers else host_services(self.layout)
        self.host = LocalStack(settings, processes)
        self._feed: EventFeed | None = None

    def _write_pipeline(self) -> None:
        image = self.layout.settings.stack.pipeline_image
        write_pipeline_compose(
            self.pipeline_file, self.layout, self.pipeline.values(), image, self._base_services
        )

    # ---- what the stack is made of -------------------------------------------------------------

    @cached_property
    def project(self) -> ProjectContainers:
        """The project's containers through the Docker API (DOCKER_HOST, else the default socket)."""
        import docker

        try:
            client = docker.from_env()
        except docker.errors.DockerException as error:
            raise StackError(
                f"cannot reach the Docker engine ({error}); is Docker running, and is DOCKER_HOST right?"
            ) from error
        return ProjectContainers(client, self.compose.project)

    @cached_property
    def container_names(self) -> list[str]:
        return self.compose.services()

    @cached_property
    def container_specs(self) -> dict[str, ServiceSpec]:
        return {spec.name: spec for spec in container_services(self.layout, self.container_names)}

    @property
    def specs(self) -> dict[str, ServiceSpec]:
        return self.container_specs | self.pipeline | self.host.specs

    def _is_host(self, name: str) -> bool:
        return name in self.host.specs

    def _container(self, name: str) -> Any:
        if name not in self.specs:
            raise StackError(f"no service {name!r}; the services are {', '.join(self.specs)}")
        return self.project.get(name)

    # ---- queries -------------------------------------------------------------------------------

    def status(self) -> list[ServiceStatus]:
        return self._container_statuses() + self.host.status()

    def _container_statuses(self) -> list[ServiceStatus]:
        """Each service of the compose file, and any other container carrying the project's label."""
        facts = {
            service: ContainerFacts.from_inspect(c.attrs) for service, c in self.project.by_service().items()
        }
        names = self.container_names + [n for n in facts if n not in self.container_names]
        return [self._status(name, facts.get(name)) for name in names]

    def _status(self, name: str, facts: ContainerFacts | None) -> ServiceStatus:
        spec = self.specs.get(name)
        reading = read_state(facts)
        running = facts is not None and facts.status in ("running", "paused")
        return ServiceStatus(
            name=name,
            role=spec.role if spec else "container of the compose project (not in its file)",
            state=reading.state,
            address=spec.address if spec else "",
            pid=facts.pid if facts and running else None,
            uptime_s=time.time() - facts.started_at if facts and running and facts.started_at else None,
            detail=reading.detail,
            exit_code=reading.exit_code,
        )

    def expected_down(self, status: ServiceStatus) -> bool:
        if self._is_host(status.name):
            return self.host.expected_down(status)
        return status.state is ServiceState.UNAVAILABLE or (
            self._on_demand(status.name) and _stopped_on_purpose(status)
        )

    def _on_demand(self, name: str) -> bool:
        """A pipeline container that runs when someone starts it (the stream services, the simulator)."""
        spec = self.pipeline.get(name)
        return spec is not None and spec.on_demand

    def last_log_lines(self, name: str, count: int = 15) -> list[str]:
        if self._is_host(name):
            return self.host.last_log_lines(name, count)
        return self._container(name).logs(tail=count).decode(errors="replace").splitlines()

    def follow_log(self, name: str) -> Iterator[str]:
        if self._is_host(name):
            yield from self.host.follow_log(name)
            return
        for chunk in self._container(name).logs(stream=True, follow=True, tail=0):
            yield chunk.decode(errors="replace")

    def events(self, since: float) -> list[StackEvent]:
        """The project's container events after `since`, streamed from the engine from the first call on."""
        if self._feed is None:
            self._feed = EventFeed(self.project, since)
        return self._feed.since(since)

    def close(self) -> None:
        if self._feed is not None:
            self._feed.close()

    # ---- lifecycle -----------------------------------------------------------------------------

    def up(self, progress: Progress = _quiet) -> StartReport:
        """`docker compose up --wait` (every health check passing), each service's own protocol answering
        from this host, then the pipeline's processes."""
        started = time.monotonic()
        before = {s.name for s in self.status() if s.state is ServiceState.READY}
        self._write_prometheus_config()
        if self.pipeline:
            self._check_pipeline_image()
        names = [name for name in self.container_names if not self._on_demand(name)]
        progress("compose", f"project {self.compose.project}: up, waiting for every health check")
        said = self._compose_up(*names)
        # Some engines (Podman) let compose exit 0 although an image could not be pulled: check.
        statuses = [s for s in self._container_statuses() if s.name in names]
        down = [s for s in statuses if s.state is not ServiceState.READY]
        if down:
            states = ", ".join(f"{s.name} ({s.state.value})" for s in down)
            raise StackError(
                f"docker compose up left services not ready: {states}\ncompose said:\n{tail(said)}"
            )
        self._ensure_bucket()
        asyncio.run(self._probe_all(progress, names))
        containers_s = time.monotonic() - started
        ready = dict.fromkeys(names, containers_s)
        host = self.host.up(progress)
        ready |= {name: containers_s + ready_s for name, ready_s in host.ready_after_s.items()}
        return StartReport(
            {n: s for n, s in ready.items() if n not in before},
            sorted(before | set(host.already_running)),
            time.monotonic() - started,
        )

    def _compose_up(self, *names: str, recreate: bool = False) -> str:
        """`docker compose up` of `names` (and what they wait on) until every health check passes; what
        compose said."""
        timeout = self.layout.settings.stack.ready_timeout * max(1, len(names))
        wait = ("--wait", "--wait-timeout", str(int(timeout)))
        again = ("--force-recreate", "--no-deps") if recreate else ()
        return self.compose.run("up", "--detach", *wait, *again, *names, timeout=timeout + 60).stderr

    def _check_pipeline_image(self) -> None:
        import docker

        image = self.layout.settings.stack.pipeline_image
        try:
            self.project.client.images.get(image)
        except docker.errors.ImageNotFound:
            raise StackError(
                f"the pipeline's image {image} is not built; build it in k2tui's source tree with "
                f'`docker build -t {image} .` (or set stack.pipeline = "host")'
            ) from None

    def _write_prometheus_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / PROMETHEUS_CONFIG).write_text(
            container_prometheus_config(self.layout, RULES_IN_CONTAINER)
        )
        (self.config_dir / PROMETHEUS_RULES).write_text(ALERT_RULES)

    def _ensure_bucket(self) -> None:
        """MinIO starts empty: the warehouse bucket is made from here, once it answers."""
        if "object-store" not in self.container_names:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        e = self.layout.endpoints
        client = s3_client(e.s3_endpoint, e.s3_access_key, e.s3_secret_key, REGION, 10)
        try:
            client.create_bucket(Bucket=self.layout.settings.stack.warehouse_bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _BUCKET_THERE:
                raise StackError(f"object-store: could not create the warehouse bucket: {error}") from error
        except BotoCoreError as error:
            raise StackError(f"object-store: could not create the warehouse bucket: {error}") from error
        finally:
            client.close()

    async def _probe_all(self, progress: Progress, names: list[str]) -> None:
        within = self.layout.settings.stack.ready_timeout

        async def probe(spec: ServiceSpec) -> None:
            try:
                await wait_ready(spec.probe, within=within, alive=lambda: True)
            except NotReady as error:
                raise StackError(f"{spec.name} is up but does not answer from this host: {error}") from error
            progress(spec.name, "ready")

        await asyncio.gather(*(probe(self.specs[name]) for name in names))

    def down(self, *, purge: bool = False) -> list[str]:
        """Stop the pipeline's processes, then remove the project's containers (`purge`: and volumes)."""
        stopped = self.host.down(purge=purge)
        running = [s.name for s in self.status() if s.pid is not None and not self._is_host(s.name)]
        self.compose.run("down", *(["--volumes"] if purge else []))
        return running + stopped

    def restart(self, name: str, progress: Progress = _quiet, *, spec: ServiceSpec | None = None) -> None:
        """Restart one service; `spec` (a pipeline process only) starts that command instead."""
        if self._is_host(name):
            self.host.restart(name, progress, spec=spec)
            return
        if spec is not None and name in self.pipeline:
            self._recreate(name, spec, progress)
            return
        if spec is not None:
            raise StackError(f"{name} is a container: its command is the compose file's")
        self._engine(self._container(name).restart)
        self._wait_ready(name, progress)

    def _recreate(self, name: str, spec: ServiceSpec, progress: Progress) -> None:
        """A pipeline container again, running `spec` (a stream service switched to another source)."""
        self.pipeline[name] = spec
        self._write_pipeline()
        waits_on = [other for other in spec.after if other in self.pipeline]
        if waits_on:
            self._compose_up(*waits_on)
        self._compose_up(name, recreate=True)
        self._wait_ready(name, progress)

    def _wait_ready(self, name: str, progress: Progress) -> None:
        """Until the container is running and healthy and its protocol answers from this host."""
        within = self.layout.settings.stack.ready_timeout
        deadline = time.monotonic() + within
        while True:
            reading = read_state(ContainerFacts.from_inspect(self._container(name).attrs))
            if reading.state is ServiceState.READY:
                break
            if reading.state is ServiceState.EXITED or time.monotonic() > deadline:
                log = tail("\n".join(self.last_log_lines(name)))
                raise StackError(f"{name} did not come up: {reading.state.value} {reading.detail}\n{log}")
            time.sleep(0.2)
        spec = self.specs[name]
        try:
            left = max(1.0, deadline - time.monotonic())
            asyncio.run(wait_ready(spec.probe, within=left, alive=lambda: True))
        except NotReady as error:
            raise StackError(f"{name} is running but does not answer from this host: {error}") from error
        progress(name, "ready")

    # ---- faults --------------------------------------------------------------------------------

    def fault(
        self,
        name: str,
        action: FaultAction,
        *,
        mode: Mode = Mode.BLACKHOLE,
        delay_ms: int = 500,
        progress: Progress = _quiet,
    ) -> str:
        """Inject or heal one fault on a container of the project (or a pipeline process on this host)."""
        if self._is_host(name):
            return self.host.fault(name, action, mode=mode, delay_ms=delay_ms, progress=progress)
        if name in self.pipeline and action in (FaultAction.START, FaultAction.PARTITION):
            return self._pipeline_fault(name, action, progress)
        container = self._container(name)
        if action is FaultAction.PARTITION:
            if mode is not Mode.BLACKHOLE:
                raise StackError(
                    f"the docker backend partitions by taking the container off its network; "
                    f"--mode {mode.value} needs the local backend's proxy"
                )
            left = self._engine(self.project.disconnect, container)
            return f"{name}: disconnected from {', '.join(left) or 'no network (it was on none)'}"
        if action is FaultAction.HEAL:
            return self._heal(name, container, progress)
        if action is FaultAction.START:
            self._engine(container.start)
            self._wait_ready(name, progress)
            return f"{name} is running and ready"
        done = {
            FaultAction.STOP: (container.stop, "stopped (docker stop)"),
            FaultAction.KILL: (container.kill, "killed (SIGKILL)"),
            FaultAction.PAUSE: (container.pause, "paused (docker pause)"),
            FaultAction.RESUME: (container.unpause, "unpaused"),
        }[action]
        self._engine(done[0])
        return f"{name} ({container.name}) {done[1]}"

    def _pipeline_fault(self, name: str, action: FaultAction, progress: Progress) -> str:
        if action is FaultAction.PARTITION:
            raise StackError(
                f"{name} runs on the host's network, so it cannot be taken off the project's; partition "
                f"what it talks to instead (`k2tui fault broker partition --backend docker`)"
            )
        self._compose_up(name)  # creates an on-demand container the first time, and what it waits on
        self._wait_ready(name, progress)
        return f"{name} is running and ready"

    def _heal(self, name: str, container: Any, progress: Progress) -> str:
        facts = ContainerFacts.from_inspect(container.attrs)
        done = []
        if facts.status == "paused":
            self._engine(container.unpause)
            done.append("unpaused")
        if facts.partitioned:
            self._engine(self.project.reconnect, container, name)
            done.append("reconnected")
        if facts.status not in ("running", "paused"):
            self._engine(container.start)
            done.append("started")
        if done:
            self._wait_ready(name, progress)
        return f"{name}: " + (", ".join(done) if done else "nothing to heal")

    def _engine(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """One Docker API call; the engine's refusal becomes a StackError a user can read."""
        import docker

        try:
            return call(*args, **kwargs)
        except docker.errors.APIError as error:
            raise StackError(f"the Docker engine refused: {error.explanation or error}") from error


def _stopped_on_purpose(status: ServiceStatus) -> bool:
    """Never started, or stopped (SIGTERM: exit 0, or 143 from a process that did not handle it)."""
    return status.state is ServiceState.STOPPED or (
        status.state is ServiceState.EXITED and status.exit_code in (0, 143)
    )
