"""The stream services out of the way of a procedure that needs the trades topics to itself, and back after.

A procedure that counts exact messages (validate consumer) or reads sequence gaps off a window of the
topics (validate pipeline) would see the stream services' trades too: it stops the running ones for its
length and starts them again in an always-step, whatever happened in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from k2tui.ingest.runner import EXCHANGES
from k2tui.stack.supervisor import FaultAction, ServiceState, StackError
from k2tui.validate.check import CheckResult, CheckStatus, Stage, verdict
from k2tui.validate.env import ValidationEnv

STILL = (ServiceState.STOPPED, ServiceState.EXITED, ServiceState.UNAVAILABLE)


@dataclass
class QuietStreams:
    env: ValidationEnv
    prefix: str
    stopped: list[str] = field(default_factory=list)
    """The stream services this run stopped, which restore() starts again."""

    async def stop(self) -> CheckResult:
        statuses = await self.env.statuses()
        running = [n for n in EXCHANGES if (s := statuses.get(n)) is not None and s.state not in STILL]
        for name in running:
            await self.env.fault(name, FaultAction.STOP)
            self.stopped.append(name)
        after = await self.env.statuses()
        still = [n for n in running if after[n].state is not ServiceState.STOPPED]
        return CheckResult(
            f"{self.prefix}.streams_stopped",
            "Stream services out of the way",
            verdict(not still),
            f"still running: {', '.join(still)}"
            if still
            else (
                f"stopped {', '.join(running)}" if running else "no stream service running: nothing to stop"
            ),
            {"stopped": running},
            ["their trades would mix with the run's own on the trades topics; the last step restarts them"],
            stage=Stage.STACK,
        )

    async def restore(self) -> CheckResult:
        if not self.stopped:
            return CheckResult(
                f"{self.prefix}.streams_restored",
                "Stream services restored",
                CheckStatus.PASS,
                "this run stopped no stream service: nothing to restore",
                stage=Stage.STACK,
            )
        failures = {}
        for name in self.stopped:
            try:
                await self.env.fault(name, FaultAction.START)
            except StackError as error:  # the others are still started
                failures[name] = str(error)
        after = await self.env.statuses()
        lines = [f"{name}: {failures.get(name) or after[name].state.value}" for name in self.stopped]
        ready = all(after[name].state is ServiceState.READY for name in self.stopped)
        return CheckResult(
            f"{self.prefix}.streams_restored",
            "Stream services restored",
            verdict(ready),
            f"started {', '.join(self.stopped)} again" if ready else "not all came back: " + "; ".join(lines),
            evidence=lines,
            stage=Stage.STACK,
        )
