"""The local backend: starts, watches, stops and faults the stack's services as processes of this machine.

It never restarts anything behind the user's back: a service that dies is reported as exited, with its
code and time, until someone starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import httpx
import psutil

from k2tui.config import Settings
from k2tui.stack.events import StackEvent
from k2tui.stack.layout import HOST, StackLayout
from k2tui.stack.local_http import local_get
from k2tui.stack.ports import PortInUseError, port_is_free
from k2tui.stack.probes import NotReady, wait_ready
from k2tui.stack.process import (
    ExitStatus,
    ProcessRecord,
    read_exit_status,
    rss_bytes,
    service_env,
    spawn,
    terminate,
)
from k2tui.stack.proxy import Mode
from k2tui.stack.services import ServiceSpec, local_services
from k2tui.stack.state import ServiceRecord, StackState, locked_state, read_state

PROBE_S = 2.0
"""How long a status gives each service's probe."""


async def probe_state(spec: ServiceSpec) -> dict[str, object]:
    """A status's state and detail from the service's own protocol: ready, or not ready and why."""
    try:
        await spec.probe(PROBE_S)
    except (NotReady, TimeoutError) as error:
        return {"state": ServiceState.NOT_READY, "detail": str(error) or "probe timed out"}
    return {"state": ServiceState.READY}


class StackError(RuntimeError):
    """A stack operation failed; the message names the service and what to do."""


class ServiceState(StrEnum):
    READY = "ready"
    NOT_READY = "not ready"
    PAUSED = "paused"
    PARTITIONED = "partitioned"
    STOPPED = "stopped"
    EXITED = "exited"
    UNAVAILABLE = "unavailable"


class FaultAction(StrEnum):
    STOP = "stop"
    START = "start"
    KILL = "kill"
    PAUSE = "pause"
    RESUME = "resume"
    PARTITION = "partition"
    HEAL = "heal"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    role: str
    state: ServiceState
    address: str
    pid: int | None = None
    uptime_s: float | None = None
    rss_bytes: int | None = None
    detail: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class StartReport:
    """How `up` went: which services it started and how long each took to become ready."""

    ready_after_s: dict[str, float]
    already_running: list[str]
    total_s: float


Progress = Callable[[str, str], None]


def _quiet(service: str, message: str) -> None:
    """The default progress sink."""


class LocalStack:
    backend = "local"

    def __init__(self, settings: Settings, specs: list[ServiceSpec] | None = None) -> None:
        """`specs` narrows the stack to those services (the docker backend's processes on this host)."""
        self.layout = StackLayout(settings)
        chosen = local_services(self.layout) if specs is None else specs
        self.specs = {spec.name: spec for spec in chosen}

    # ---- queries -------------------------------------------------------------------------------

    def spec(self, name: str) -> ServiceSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise StackError(f"no service {name!r}; the services are {', '.join(self.specs)}") from None

    def status(self) -> list[ServiceStatus]:
        state = read_state(self.layout.state_file)
        routes = self._routes()
        return asyncio.run(self._statuses(state, routes))

    async def _statuses(self, state: StackState, routes: dict[str, str] | None) -> list[ServiceStatus]:
        return list(await asyncio.gather(*(self._status(s, state, routes) for s in self.specs.values())))

    async def _status(
        self, spec: ServiceSpec, state: StackState, routes: dict[str, str] | None
    ) -> ServiceStatus:
        base = {"name": spec.name, "role": spec.role, "address": spec.address}
        if spec.unavailable:
            return ServiceStatus(**base, state=ServiceState.UNAVAILABLE, detail=spec.unavailable)
        if spec.command is None:
            return ServiceStatus(**base, **await probe_state(spec))
        entry = state.record(spec.name)
        if entry is None:
            detail = f"on demand: `k2tui restart {spec.name}` starts it" if spec.on_demand else "not started"
            return ServiceStatus(**base, state=ServiceState.STOPPED, detail=detail)
        record = entry.process
        process = record.find()
        if process is None:
            if entry.stopped:
                return ServiceStatus(**base, state=ServiceState.STOPPED, detail="stopped by k2tui")
            exit_status = self.exit_status(spec.name)
            if exit_status is None:
                return ServiceStatus(**base, state=ServiceState.EXITED, detail="gone; no exit status kept")
            return ServiceStatus(
                **base, state=ServiceState.EXITED, detail=exit_status.describe(), exit_code=exit_status.code
            )
        live = {
            "pid": record.pid,
            "uptime_s": time.time() - record.create_time,
            "rss_bytes": rss_bytes(process),
        }
        if process.status() == psutil.STATUS_STOPPED:
            return ServiceStatus(**base, **live, state=ServiceState.PAUSED, detail="SIGSTOP; heal resumes it")
        mode = (routes or {}).get(spec.proxy_route or "", Mode.PASS)
        if mode != Mode.PASS:
            return ServiceStatus(
                **base, **live, state=ServiceState.PARTITIONED, detail=f"proxy route in {mode} mode"
            )
        return ServiceStatus(**base, **live, **await probe_state(spec))

    def expected_down(self, status: ServiceStatus) -> bool:
        """Whether `status` is no fault: a service not installed here, or one run on demand and stopped."""
        spec = self.specs.get(status.name)
        stopped_on_demand = spec is not None and spec.on_demand and status.state is ServiceState.STOPPED
        return status.state is ServiceState.UNAVAILABLE or stopped_on_demand

    def _routes(self) -> dict[str, str] | None:
        """Mode of each proxy route, or None when the proxy does not answer."""
        try:
            response = local_get(self._control_url(), timeout=1.0)
            return {route["name"]: route["mode"] for route in response.json()}
        except (httpx.HTTPError, ValueError):
            return None

    def _control_url(self, route: str = "") -> str:
        port = self.layout.settings.stack.proxy_control_port
        return f"http://{HOST}:{port}/routes" + (f"/{route}" if route else "")

    def log_file(self, name: str) -> Path:
        self.spec(name)
        return self.layout.log_file(name)

    def last_log_lines(self, name: str, count: int = 15) -> list[str]:
        try:
            with self.layout.log_file(name).open("rb") as log:
                log.seek(0, 2)
                log.seek(max(0, log.tell() - 64 * 1024))
                return log.read().decode(errors="replace").splitlines()[-count:]
        except OSError:
            return []

    def follow_log(self, name: str) -> Iterator[str]:
        """What the service writes to its log from now on, as it comes; runs until the caller stops."""
        with self.log_file(name).open("rb") as log:
            log.seek(0, 2)
            while True:
                chunk = log.read()
                if chunk:
                    yield chunk.decode(errors="replace")
                else:
                    time.sleep(0.2)

    def events(self, since: float) -> list[StackEvent]:
        """Local processes have no engine to report on them: what happens to them shows in `status`."""
        return []

    # ---- lifecycle -----------------------------------------------------------------------------

    def up(self, progress: Progress = _quiet) -> StartReport:
        """Start every service not already running (except those run on demand); wait until all are ready."""
        started = time.monotonic()
        with locked_state(self.layout.state_file) as state:
            running = [n for n, s in self.specs.items() if s.command and self._alive(state, n)]
            wanted = [
                s
                for s in self.specs.values()
                if s.name not in running and not s.unavailable and not s.on_demand
            ]
            self._check_ports([s for s in wanted if s.command])
            ready = asyncio.run(self._start_all(wanted, state, progress))
        return StartReport(ready, running, time.monotonic() - started)

    def _alive(self, state: StackState, name: str) -> bool:
        entry = state.record(name)
        return entry is not None and entry.process.is_alive()

    def _check_ports(self, specs: list[ServiceSpec]) -> None:
        for spec in specs:
            for claim in spec.ports:
                if not port_is_free(claim.port, HOST):
                    raise PortInUseError(
                        f"port {claim.port} (for {spec.name}) is already in use by {_holder(claim.port)}; "
                        f"stop it or change the setting {claim.setting}"
                    )

    async def _start_all(
        self, specs: list[ServiceSpec], state: StackState, progress: Progress
    ) -> dict[str, float]:
        loop = asyncio.get_running_loop()
        starting = {s.name for s in specs}
        ready_events = {name: asyncio.Event() for name in self.specs}
        for name in self.specs.keys() - starting:
            ready_events[name].set()
        begin = loop.time()
        ready_after: dict[str, float] = {}

        async def bring_up(spec: ServiceSpec) -> None:
            for dependency in spec.after:
                await ready_events[dependency].wait()
            await self._start_one(spec, state, progress)
            ready_after[spec.name] = loop.time() - begin
            ready_events[spec.name].set()

        tasks = [asyncio.create_task(bring_up(spec)) for spec in specs]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        return ready_after

    async def _start_one(self, spec: ServiceSpec, state: StackState, progress: Progress) -> None:
        timeout = self.layout.settings.stack.ready_timeout
        record: ProcessRecord | None = None
        (self.layout.data_dir / spec.name).mkdir(parents=True, exist_ok=True)
        if spec.command is not None:
            for path, text in spec.config_files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            record = spawn(
                spec.command,
                env=service_env({"PYTHONUNBUFFERED": "1", **spec.env}),
                log_file=self.layout.log_file(spec.name),
                pid_file=self.layout.run_dir / f"{spec.name}.pid",
                exit_file=self._exit_file(spec.name),
                cwd=self.layout.data_dir / spec.name,
                nice=self.layout.settings.stack.service_nice,
            )
            state.services[spec.name] = ServiceRecord(record)
            progress(spec.name, f"started (pid {record.pid})")
        try:
            await wait_ready(spec.probe, within=timeout, alive=record.is_alive if record else lambda: True)
        except NotReady as error:
            tail = "\n".join("  " + line for line in self.last_log_lines(spec.name))
            where = f"; last lines of {self.layout.log_file(spec.name)}:\n{tail}" if record and tail else ""
            raise StackError(f"{spec.name} did not come up: {error}{where}") from error
        progress(spec.name, "ready")

    def exit_status(self, name: str) -> ExitStatus | None:
        """The keeper writes the exit file a moment after its service is reaped; allow for that."""
        deadline = time.monotonic() + 0.5
        while (status := read_exit_status(self._exit_file(name))) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return status

    def _exit_file(self, name: str) -> Path:
        return self.layout.run_dir / f"{name}.exit"

    def down(self, *, purge: bool = False) -> list[str]:
        """Stop everything this stack started, dependents before what they depend on; `purge` deletes data."""
        stopped: list[str] = []
        with locked_state(self.layout.state_file) as state:
            for wave in self._stop_waves():
                entries = {n: e for n in wave if (e := state.record(n)) is not None}
                running = [n for n, e in entries.items() if e.process.is_alive()]
                terminate(*(entries[n].process for n in running))
                stopped.extend(running)
                for entry in entries.values():
                    entry.stopped = True
        if purge:
            for path in (self.layout.data_dir, self.layout.log_dir, self.layout.state_file.parent):
                shutil.rmtree(path, ignore_errors=True)
        return stopped

    def _stop_waves(self) -> list[list[str]]:
        """Services in groups that can stop together: nothing still running depends on a group's members."""
        remaining = list(self.specs)
        waves = []
        while remaining:
            wave = [n for n in remaining if not any(n in self.specs[o].after for o in remaining if o != n)]
            waves.append(wave or remaining[:])
            remaining = [n for n in remaining if n not in waves[-1]]
        return waves

    def restart(self, name: str, progress: Progress = _quiet, *, spec: ServiceSpec | None = None) -> None:
        """Stop `name` and start it again; with `spec`, start that command instead (kept for later starts)."""
        self._process_spec(name)
        if spec is not None:
            self.specs[name] = spec
        spec = self._process_spec(name)
        with locked_state(self.layout.state_file) as state:
            entry = state.record(name)
            if entry is not None:
                terminate(entry.process)
            self._check_ports([spec])
            asyncio.run(self._start_with_dependencies(spec, state, progress))

    async def _start_with_dependencies(
        self, spec: ServiceSpec, state: StackState, progress: Progress
    ) -> None:
        """Start `spec`, first starting what it runs after that is only started on demand (the simulator)."""
        for dependency in spec.after:
            needed = self.specs[dependency]
            if needed.on_demand and not self._alive(state, dependency):
                self._check_ports([needed])
                await self._start_one(needed, state, progress)
        await self._start_one(spec, state, progress)

    def _process_spec(self, name: str) -> ServiceSpec:
        spec = self.spec(name)
        if spec.unavailable:
            raise StackError(f"{name} is unavailable: {spec.unavailable}")
        if spec.command is None:
            raise StackError(f"{name} has no process of its own to act on (it lives at {spec.address})")
        return spec

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
        """Inject or heal one fault; returns a sentence saying what was done."""
        spec = self._process_spec(name)
        if action is FaultAction.PARTITION:
            return self._set_route(spec, mode, delay_ms)
        if action is FaultAction.START:
            self._start_if_needed(spec, progress)
            return f"{name} is running and ready"
        if action is FaultAction.HEAL:
            return self._heal(spec, progress)
        with locked_state(self.layout.state_file) as state:
            entry = state.record(name)
            if entry is None or not entry.process.is_alive():
                raise StackError(f"{name} is not running; start it with `k2tui fault {name} start`")
            if action is FaultAction.STOP:
                terminate(entry.process)
                entry.stopped = True
                return f"{name} stopped (SIGTERM)"
            signum = {
                FaultAction.KILL: signal.SIGKILL,
                FaultAction.PAUSE: signal.SIGSTOP,
                FaultAction.RESUME: signal.SIGCONT,
            }[action]
            process = entry.process.find()
            entry.process.signal(signum)
            if action is FaultAction.KILL and process is not None:
                # Held from before the signal: a dying process no longer matches its record (no cmdline),
                # yet still holds its ports until it is reaped; a restart straight after must find them free.
                psutil.wait_procs([process], timeout=5.0)
            return f"{name} (pid {entry.process.pid}) sent {signum.name}"

    def _start_if_needed(self, spec: ServiceSpec, progress: Progress) -> None:
        with locked_state(self.layout.state_file) as state:
            if not self._alive(state, spec.name):
                self._check_ports([spec])
                asyncio.run(self._start_with_dependencies(spec, state, progress))

    def _heal(self, spec: ServiceSpec, progress: Progress) -> str:
        done = []
        state = read_state(self.layout.state_file)
        entry = state.record(spec.name)
        if entry is not None and entry.process.is_paused():
            entry.process.signal(signal.SIGCONT)
            done.append("resumed")
        routes = self._routes() or {}
        if spec.proxy_route and routes.get(spec.proxy_route, Mode.PASS) != Mode.PASS:
            self._set_route(spec, Mode.PASS, 0)
            done.append("reconnected")
        if entry is None or not entry.process.is_alive():
            self._start_if_needed(spec, progress)
            done.append("started")
        return f"{spec.name}: " + (", ".join(done) if done else "nothing to heal")

    def _set_route(self, spec: ServiceSpec, mode: Mode, delay_ms: int) -> str:
        if spec.proxy_route is None:
            routed = ", ".join(s.name for s in self.specs.values() if s.proxy_route)
            raise StackError(f"{spec.name} is not behind the proxy; a partition works on {routed}")
        try:
            response = httpx.put(
                self._control_url(spec.proxy_route),
                json={"mode": mode.value, "delay_ms": delay_ms},
                timeout=5,
            )
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise StackError(f"the proxy did not take the change ({error}); is the stack up?") from error
        if mode is Mode.PASS:
            return f"{spec.name}: partition healed"
        return f"{spec.name}: partitioned ({mode.value}{f' {delay_ms} ms' if mode is Mode.DELAY else ''})"


def _holder(port: int) -> str:
    """Which process listens on `port`, as far as this user may see."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f"another process (pid {conn.pid}, {psutil.Process(conn.pid).name()})"
    return "another process"
