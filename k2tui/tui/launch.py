"""`k2tui demo` around the cockpit: bring up the stack and the streams before it opens, and afterwards
take down only what the demo itself started — a stack someone else had running stays as it was.

Nothing here imports Textual: the CLI calls these before and after running the app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from k2tui.ingest.control import start_stream
from k2tui.ingest.runner import EXCHANGES
from k2tui.lake.catalog import ensure_trades_table, open_catalog
from k2tui.stack.supervisor import FaultAction, LocalStack, ServiceState, StartReport

Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class DemoSession:
    started: list[str]
    """Services the demo started, in start order; the rest were running before it."""
    everything: bool
    """Nothing ran before the demo, so stopping means the whole stack (`down`)."""


def _running(stack: LocalStack) -> set[str]:
    return {s.name for s in stack.status() if s.pid is not None and s.state is not ServiceState.EXITED}


def bring_up(stack: LocalStack, progress: Progress) -> StartReport:
    """`k2tui up`: every service ready, and the trades table there for the consumer and the API."""
    report = stack.up(progress)
    _, created = ensure_trades_table(open_catalog(stack.layout))
    if created:
        progress("catalog", "created market_data.trades_v2")
    return report


def start_demo(stack: LocalStack, progress: Progress) -> DemoSession:
    """Everything `up` starts, then both stream services (live, else the simulator: `streams.source`)."""
    before = _running(stack)
    bring_up(stack, progress)
    for exchange in EXCHANGES:
        progress(exchange, start_stream(stack, exchange))
    now = _running(stack)
    return DemoSession([name for name in stack.specs if name in now - before], everything=not before)


def stop_demo(stack: LocalStack, session: DemoSession) -> list[str]:
    """Stop what the demo started, dependents first; the names stopped."""
    if session.everything:
        return stack.down()
    running = _running(stack)  # one status read: stopping one service leaves the others as they are
    stopped = [name for name in reversed(session.started) if name in running]
    for name in stopped:
        stack.fault(name, FaultAction.STOP)
    return stopped
