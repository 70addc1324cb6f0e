"""Starting, stopping and switching the stream services, and reading their /stats: what the cockpit's
stream keys and `k2tui restart <exchange> --source` call.

Switching a stream between the live exchange and the simulator is restarting its service with the
other source; the service itself says (in /stats) which source it ended up on.
"""

from __future__ import annotations

import httpx
import msgspec

from k2tui.config import Settings
from k2tui.ingest.runner import EXCHANGES, SIMULATED
from k2tui.ingest.status import StatsPage
from k2tui.stack.backend import Stack
from k2tui.stack.local_http import local_get
from k2tui.stack.services import STREAM_SOURCES, stats_url, stream_service
from k2tui.stack.supervisor import FaultAction, StackError

STATS_TIMEOUT_S = 1.0


def decode_stats(body: bytes) -> StatsPage:
    return msgspec.json.decode(body, type=StatsPage)


def read_stats(settings: Settings, exchange: str, timeout: float = STATS_TIMEOUT_S) -> StatsPage:
    """The stream service's /stats; raises httpx.HTTPError when it does not answer."""
    response = local_get(stats_url(settings, exchange), timeout=timeout)
    response.raise_for_status()
    return decode_stats(response.content)


def _check(exchange: str) -> None:
    if exchange not in EXCHANGES:
        raise StackError(f"no stream {exchange!r}; the streams are {', '.join(EXCHANGES)}")


def _started(stack: Stack, exchange: str, verb: str) -> str:
    """What the service says about its source once ready, as the sentence the caller shows."""
    try:
        page = read_stats(stack.layout.settings, exchange)
    except (httpx.HTTPError, msgspec.DecodeError) as error:
        return f"{exchange}: {verb} (its /stats does not answer: {error})"
    sources = {s.source for s in page.streams}
    shown = ", ".join("simulator" if s == SIMULATED else s for s in sorted(sources)) or "no stream yet"
    return f"{exchange}: {verb} ({shown})"


def start_stream(stack: Stack, exchange: str) -> str:
    """Start the stream service (and the simulator it reads, if it does) unless it runs already."""
    _check(exchange)
    stack.fault(exchange, FaultAction.START)
    return _started(stack, exchange, "started")


def stop_stream(stack: Stack, exchange: str) -> str:
    _check(exchange)
    stack.fault(exchange, FaultAction.STOP)
    return f"{exchange}: stopped"


def set_stream_source(stack: Stack, exchange: str, source: str) -> str:
    """Restart the stream service reading `source` (live, sim or auto); a stopped one is started."""
    _check(exchange)
    if source not in STREAM_SOURCES:
        raise StackError(f"unknown source {source!r}; expected one of {', '.join(STREAM_SOURCES)}")
    stack.restart(exchange, spec=stream_service(stack.layout, exchange, source))
    return _started(stack, exchange, f"restarted with source {source}")
