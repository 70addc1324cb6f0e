"""The containers of one Compose project, found only by the project's label, and what their state means.

Every action of the docker backend reaches a container through `ProjectContainers`, which lists by
the label `com.docker.compose.project=<project>` and checks the label again on what the engine returns:
a container of another project, or of none, is never touched.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from k2tui.stack.events import StackEvent
from k2tui.stack.process import ExitStatus
from k2tui.stack.supervisor import ServiceState, StackError

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
_NO_NETWORK_MODES = ("host", "none")
EVENT_ACTIONS = {
    "create",
    "start",
    "restart",
    "stop",
    "kill",
    "die",
    "oom",
    "pause",
    "unpause",
    "health_status",
    "destroy",
    "remove",
    "connect",
    "disconnect",
}
"""Container and network actions worth a line in the event log (not the exec_* of every health check)."""


@dataclass(frozen=True)
class ContainerFacts:
    """What the engine's inspect says about one container, past the parsing edge."""

    name: str
    service: str
    project: str
    status: str
    pid: int | None
    started_at: float | None
    finished_at: float | None
    exit_code: int
    health: str
    """healthy, unhealthy, starting, or empty when the image has no health check."""
    health_output: str
    networks: tuple[str, ...]
    network_mode: str

    @classmethod
    def from_inspect(cls, attrs: dict[str, Any]) -> ContainerFacts:
        state = attrs.get("State") or {}
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        health = state.get("Health") or {}
        log = health.get("Log") or []
        status = state.get("Status", "")
        if state.get("Paused") and status == "running":
            status = "paused"
        return cls(
            name=attrs.get("Name", "").lstrip("/"),
            service=labels.get(SERVICE_LABEL, ""),
            project=labels.get(PROJECT_LABEL, ""),
            status=status,
            pid=state.get("Pid") or None,
            started_at=_engine_time(state.get("StartedAt")),
            finished_at=_engine_time(state.get("FinishedAt")),
            exit_code=int(state.get("ExitCode") or 0),
            health=health.get("Status") or "",
            health_output=(log[-1].get("Output") or "").strip() if log else "",
            networks=tuple((attrs.get("NetworkSettings") or {}).get("Networks") or {}),
            network_mode=(attrs.get("HostConfig") or {}).get("NetworkMode", ""),
        )

    @property
    def partitioned(self) -> bool:
        """Up (running or paused), meant to be on a network, and on none: a partition took it off."""
        joined_another = self.network_mode.startswith(("container:", "service:"))
        meant_for_network = self.network_mode not in _NO_NETWORK_MODES and not joined_another
        return self.status in ("running", "paused") and meant_for_network and not self.networks


def _engine_time(text: str | None) -> float | None:
    """An engine timestamp (RFC 3339 with nanoseconds) as epoch seconds; None for the zero time."""
    if not text or text.startswith("0001-"):
        return None
    head, _, tail = text.partition(".")
    if tail:
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits) :]
        head = f"{head}.{digits[:6]}{zone}"
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(head.replace("Z", "+00:00")).timestamp()
    return None


@dataclass(frozen=True)
class StateReading:
    state: ServiceState
    detail: str = ""
    exit_code: int | None = None


def read_state(facts: ContainerFacts | None) -> StateReading:
    """A container's state as the stack reports it: running and healthy (or without a health check) is
    ready; paused is paused; running but off its network is partitioned; exited carries its code."""
    if facts is None:
        return StateReading(ServiceState.STOPPED, "no container; `k2tui up --backend docker` creates it")
    if facts.status == "paused":
        return StateReading(ServiceState.PAUSED, "paused (docker pause); heal unpauses it")
    if facts.status in ("exited", "dead", "stopped"):
        at = facts.finished_at or time.time()
        return StateReading(ServiceState.EXITED, ExitStatus(facts.exit_code, at).describe(), facts.exit_code)
    if facts.status == "created":
        return StateReading(ServiceState.STOPPED, "created, never started")
    if facts.status != "running":
        return StateReading(ServiceState.NOT_READY, facts.status)
    if facts.partitioned:
        return StateReading(ServiceState.PARTITIONED, "disconnected from its network; heal reconnects it")
    if facts.health == "starting":
        return StateReading(ServiceState.NOT_READY, "health check starting")
    if facts.health == "unhealthy":
        said = f": {facts.health_output.splitlines()[-1]}" if facts.health_output else ""
        return StateReading(ServiceState.NOT_READY, f"unhealthy{said}")
    return StateReading(ServiceState.READY)


def event_from_engine(raw: dict[str, Any], project: str, services: dict[str, str]) -> StackEvent | None:
    """One engine event as a StackEvent, or None when it is not about this project or not worth a line.

    `services` maps container ids to service names, for network events that name only the container.
    """
    actor = raw.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    action = (raw.get("Action") or raw.get("status") or "").split(":")[0]
    if action not in EVENT_ACTIONS:
        return None
    if raw.get("Type") == "network":
        service = services.get(attributes.get("container", ""))
        if service is None:
            return None
        detail = f"network {attributes.get('name', '')}".strip()
    else:
        if attributes.get(PROJECT_LABEL) != project:
            return None
        service = attributes.get(SERVICE_LABEL) or attributes.get("name", "?")
        detail = _event_detail(action, attributes, raw)
    nanos = raw.get("timeNano")
    when = nanos / 1e9 if nanos else float(raw.get("time") or time.time())
    return StackEvent(when, service, action, detail)


def _event_detail(action: str, attributes: dict[str, str], raw: dict[str, Any]) -> str:
    if action == "die":
        code = attributes.get("exitCode") or attributes.get("containerExitCode")
        return f"exit code {code}" if code is not None else ""
    if action == "kill" and attributes.get("signal"):
        return f"signal {attributes['signal']}"
    if action == "health_status":
        return (raw.get("Action") or raw.get("status") or "").partition(":")[2].strip() or attributes.get(
            "health_status", ""
        )
    return ""


class ProjectContainers:
    """The containers and networks of one Compose project, through the `docker` SDK client."""

    def __init__(self, client: Any, project: str) -> None:
        self.client = client
        self.project = project

    @property
    def label(self) -> str:
        return f"{PROJECT_LABEL}={self.project}"

    def containers(self) -> list[Any]:
        """Every container of the project, running or not."""
        found = self.client.containers.list(all=True, filters={"label": self.label})
        return [c for c in found if c.labels.get(PROJECT_LABEL) == self.project]

    def by_service(self) -> dict[str, Any]:
        return {c.labels.get(SERVICE_LABEL, c.name): c for c in self.containers()}

    def get(self, service: str) -> Any:
        container = self.by_service().get(service)
        if container is None:
            raise StackError(
                f"compose project {self.project!r} has no container for {service!r}; "
                "`k2tui up --backend docker` creates it"
            )
        return container

    def networks(self) -> list[Any]:
        found = self.client.networks.list(filters={"label": self.label})
        return [n for n in found if (n.attrs.get("Labels") or {}).get(PROJECT_LABEL) == self.project]

    def disconnect(self, container: Any) -> list[str]:
        """Take `container` off every network of the project it is on; the networks' names."""
        container.reload()
        joined = set((container.attrs.get("NetworkSettings") or {}).get("Networks") or {})
        left = []
        for network in self.networks():
            if network.name in joined:
                network.disconnect(container)
                left.append(network.name)
        return left

    def reconnect(self, container: Any, service: str) -> list[str]:
        """Put `container` back on every network of the project, reachable again by its service name."""
        container.reload()
        joined = set((container.attrs.get("NetworkSettings") or {}).get("Networks") or {})
        back = []
        for network in self.networks():
            if network.name not in joined:
                network.connect(container, aliases=[service])
                back.append(network.name)
        return back


class EventFeed:
    """The project's container events, streamed from the engine by a background thread into a ring.

    One streaming request rather than a query per refresh: engines differ on `until` (Podman answers
    nothing for an `until` of now), while a stream with `since` behaves the same everywhere.
    """

    def __init__(self, containers: ProjectContainers, since: float, keep: int = 500) -> None:
        self.containers = containers
        self.seen: deque[StackEvent] = deque(maxlen=keep)
        self.error = ""
        self._lock = threading.Lock()
        self._since = since
        self._stream: Any = None
        self._stopped = threading.Event()
        self._services: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, name="docker-events", daemon=True)
        self._thread.start()

    def since(self, moment: float) -> list[StackEvent]:
        with self._lock:
            return [event for event in self.seen if event.time > moment]

    def close(self) -> None:
        self._stopped.set()
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()

    def _run(self) -> None:
        """Stream until closed; after an engine hiccup, resume from the last event seen."""
        while not self._stopped.is_set():
            try:
                for raw in self._events():
                    self._take(raw)
            except Exception as error:  # the engine went away: say so and try again
                self.error = f"{type(error).__name__}: {error}"
            self._stopped.wait(1.0)

    def _events(self) -> Iterator[dict[str, Any]]:
        client = self.containers.client
        self._stream = client.events(
            since=int(self._since), decode=True, filters={"type": ["container", "network"]}
        )
        return iter(self._stream)

    def _take(self, raw: dict[str, Any]) -> None:
        container_id = ((raw.get("Actor") or {}).get("Attributes") or {}).get("container", "")
        if raw.get("Type") == "network" and container_id not in self._services:
            self._services = {c.id: c.labels.get(SERVICE_LABEL, c.name) for c in self.containers.containers()}
        event = event_from_engine(raw, self.containers.project, self._services)
        if event is None:
            return
        with self._lock:
            if event in self.seen:  # streamed again after a resume from the same second
                return
            self.seen.append(event)
        self._since = max(self._since, event.time)
