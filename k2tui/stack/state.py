"""The stack's memory between commands: which process it started for each service, under a file lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from k2tui.stack.process import ProcessRecord


@dataclass
class ServiceRecord:
    process: ProcessRecord
    stopped: bool = False
    """Stopped on purpose (down, fault stop): shown as stopped, not as exited."""


@dataclass
class StackState:
    services: dict[str, ServiceRecord] = field(default_factory=dict)

    def record(self, name: str) -> ServiceRecord | None:
        return self.services.get(name)


def read_state(path: Path) -> StackState:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return StackState()
    except (OSError, ValueError) as error:
        raise RuntimeError(f"stack state {path} is unreadable ({error}); delete that file") from error
    services = {}
    for name, entry in raw.get("services", {}).items():
        process = entry["process"]
        record = ProcessRecord(process["pid"], process["create_time"], tuple(process["cmdline"]))
        services[name] = ServiceRecord(record, entry.get("stopped", False))
    return StackState(services)


@contextlib.contextmanager
def locked_state(path: Path) -> Iterator[StackState]:
    """The state, locked against other k2tui commands for the block, written back atomically at its end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / (path.name + ".lock")).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read_state(path)
        try:
            yield state
        finally:
            # Written even when the block failed: processes it started must stay known, so `down` stops them.
            tmp = path.with_suffix(".tmp")
            services = {k: asdict(v) for k, v in state.services.items()}
            tmp.write_text(json.dumps({"services": services}, indent=2))
            tmp.replace(path)
