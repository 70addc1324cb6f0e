"""The cockpit's stream keys: b and k start or stop the Binance and Kraken streams, l switches the running
streams between the live exchanges and the simulator.

Mixed into CockpitApp. Each key runs a worker that calls the `StreamSwitchboard` and says in the event
log what happened; one exchange takes one key at a time (a start takes seconds: the service must come up).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.worker import Worker

from k2tui.tui.stream_feed import StreamsSnapshot, StreamSwitchboard
from k2tui.tui.widgets.streams import StreamsPane


class StreamKeys:
    """Actions and workers behind the keys b, k and l, and the Streams pane's redraw."""

    switchboard: StreamSwitchboard
    streams_seen: StreamsSnapshot | None
    stream_workers: dict[str, Worker[Any]]

    def setup_streams(self, switchboard: StreamSwitchboard) -> None:
        self.switchboard = switchboard
        self.streams_seen = None
        self.stream_workers = {}

    def show_streams(self, snapshot: StreamsSnapshot) -> None:
        self.streams_seen = snapshot
        self.main.query_one(StreamsPane).render_snapshot(snapshot)

    def action_toggle_stream(self, exchange: str) -> None:
        view = None if self.streams_seen is None else self.streams_seen.view(exchange)
        if view is not None and view.running:
            self._stream_job(exchange, "stopping", lambda: self.switchboard.stop(exchange))
        else:
            self._stream_job(exchange, "starting", lambda: self.switchboard.start(exchange))

    def action_switch_streams(self) -> None:
        """Running streams all go to the simulator, or back to live when any of them is simulated."""
        running = [] if self.streams_seen is None else [v for v in self.streams_seen.streams if v.running]
        if not running:
            self.log_event("streams: none is running; b or k starts one", "yellow")
            return
        target = "live" if any(v.simulated for v in running) else "sim"
        for view in running:
            exchange = view.exchange
            self._stream_job(
                exchange,
                f"switching to {'the simulator' if target == 'sim' else 'live'}",
                lambda exchange=exchange: self.switchboard.set_source(exchange, target),
            )

    def _stream_job(self, exchange: str, doing: str, call: Callable[[], Awaitable[str]]) -> None:
        busy = self.stream_workers.get(exchange)
        if busy is not None and not busy.is_finished:
            self.log_event(f"{exchange}: busy with the last key; wait for it", "yellow")
            return
        self.log_event(f"{exchange}: {doing}…")
        self.stream_workers[exchange] = self.run_worker(
            self._stream_call(exchange, call), group=f"stream-{exchange}", exit_on_error=False
        )

    async def _stream_call(self, exchange: str, call: Callable[[], Awaitable[str]]) -> None:
        try:
            self.log_event(await call(), "green")
        except Exception as error:
            self.log_event(f"{exchange}: failed: {_first_lines(str(error))}", "red")
        self.refresh_sources()


def _first_lines(reason: str, lines: int = 3) -> str:
    """A failure as the log shows it: a service that did not come up quotes its whole log tail."""
    kept = [line.strip() for line in reason.splitlines() if line.strip()]
    return " / ".join(kept[:lines]) + (" …" if len(kept) > lines else "")
