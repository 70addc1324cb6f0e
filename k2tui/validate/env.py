"""What a procedure runs against: the settings, the stack and its endpoints, reached without blocking.

The stack's own calls are synchronous (they run their own event loop), so procedures reach them
through a thread; everything here is safe to await from a procedure, the CLI's loop or a TUI worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from k2tui.config import Settings
from k2tui.ingest.dlq import dlq_dir
from k2tui.ingest.topics import TOPICS
from k2tui.stack.backend import Stack, open_stack
from k2tui.stack.layout import Endpoints, StackLayout
from k2tui.stack.supervisor import FaultAction, ServiceState, ServiceStatus
from k2tui.validate.check import CheckResult, CheckStatus, Stage


@dataclass
class ValidationEnv:
    settings: Settings
    stack: Stack

    @classmethod
    def local(cls, settings: Settings) -> ValidationEnv:
        """On the stack the settings choose (stack.backend): local processes or the compose project."""
        return cls(settings, open_stack(settings))

    @property
    def layout(self) -> StackLayout:
        return self.stack.layout

    @property
    def endpoints(self) -> Endpoints:
        return self.layout.endpoints

    @property
    def api_url(self) -> str:
        return self.endpoints.api_url

    @property
    def dlq_directory(self) -> Path:
        return dlq_dir(self.settings)

    @property
    def topics(self) -> list[str]:
        return list(TOPICS.values())

    async def statuses(self) -> dict[str, ServiceStatus]:
        return {status.name: status for status in await asyncio.to_thread(self.stack.status)}

    async def fault(self, service: str, action: FaultAction) -> str:
        """Inject or heal one fault through the stack; returns what was done."""
        return await asyncio.to_thread(self.stack.fault, service, action)

    async def restart(self, service: str) -> None:
        await asyncio.to_thread(self.stack.restart, service)

    def service_configured(self, name: str) -> bool:
        return name in self.stack.specs


async def services_ready(
    env: ValidationEnv, names: Sequence[str], *, check_id: str, optional: Sequence[str] = ()
) -> CheckResult:
    """Pass when every one of `names` is ready; an `optional` service down only warns."""
    statuses = await env.statuses()
    lines = []
    down = []
    soft = []
    for name in (*names, *optional):
        status = statuses.get(name)
        if status is None:
            state, detail = "not part of this stack", ""
        else:
            state, detail = status.state.value, status.detail
        lines.append(f"{name}: {state}{f' ({detail})' if detail else ''}")
        if status is None or status.state is not ServiceState.READY:
            (soft if name in optional else down).append(name)
    if down:
        outcome = CheckStatus.FAIL
        detail = f"not ready: {', '.join(down)}; start the stack with `k2tui up`"
    elif soft:
        outcome, detail = CheckStatus.WARN, f"ready, except the optional {', '.join(soft)}"
    else:
        outcome, detail = CheckStatus.PASS, f"{len(names) + len(optional)} services ready"
    return CheckResult(
        check_id, "Services running", outcome, detail, {"down": down + soft}, lines, stage=Stage.STACK
    )
