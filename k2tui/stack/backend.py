"""What every backend of the stack offers, and the one place that picks a backend from the settings.

The CLI, the validation suite and the cockpit hold a `Stack` and never ask which kind it is: local
processes (`LocalStack`), containers of a Compose project (`DockerStack`) or services someone else
runs (`ExternalStack`, which only reads them) answer the same calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from k2tui.config import Settings
from k2tui.stack.events import StackEvent
from k2tui.stack.layout import StackLayout
from k2tui.stack.proxy import Mode
from k2tui.stack.services import ServiceSpec
from k2tui.stack.supervisor import FaultAction, LocalStack, Progress, ServiceStatus, StartReport

BACKENDS = ("local", "docker", "external")


class Stack(Protocol):
    backend: str
    layout: StackLayout
    specs: dict[str, ServiceSpec]

    def status(self) -> list[ServiceStatus]: ...
    def expected_down(self, status: ServiceStatus) -> bool: ...
    def up(self, progress: Progress = ...) -> StartReport: ...
    def down(self, *, purge: bool = False) -> list[str]: ...
    def restart(self, name: str, progress: Progress = ..., *, spec: ServiceSpec | None = None) -> None: ...
    def fault(
        self,
        name: str,
        action: FaultAction,
        *,
        mode: Mode = ...,
        delay_ms: int = ...,
        progress: Progress = ...,
    ) -> str: ...
    def last_log_lines(self, name: str, count: int = 15) -> list[str]: ...
    def follow_log(self, name: str) -> Iterator[str]: ...
    def events(self, since: float) -> list[StackEvent]: ...


def open_stack(settings: Settings, backend: str | None = None) -> Stack:
    """The stack the settings describe; `backend` (a --backend flag) wins over the stack.backend setting."""
    chosen = backend or settings.stack.backend
    if chosen == "docker":
        from k2tui.stack.docker.stack import DockerStack

        return DockerStack(settings)
    if chosen == "external":
        from k2tui.stack.external import ExternalStack

        return ExternalStack(settings)
    if chosen != "local":
        raise ValueError(f"unknown stack backend {chosen!r}; expected one of {', '.join(BACKENDS)}")
    return LocalStack(settings)
