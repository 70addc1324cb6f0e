"""Services pane: each stack service's state, address and uptime, and the backend in use."""

from __future__ import annotations

from rich.text import Text

from k2tui.stack.supervisor import ServiceState
from k2tui.tui.data import ServicesSnapshot
from k2tui.tui.widgets.body import Column, Grid
from k2tui.tui.widgets.pane import Pane
from k2tui.tui.widgets.tables import duration

STATE_STYLES = {
    ServiceState.READY: "green",
    ServiceState.NOT_READY: "yellow",
    ServiceState.PAUSED: "yellow",
    ServiceState.PARTITIONED: "magenta",
    ServiceState.STOPPED: "dim",
    ServiceState.EXITED: "red",
    ServiceState.UNAVAILABLE: "dim",
}


class ServicesPane(Pane):
    def __init__(self) -> None:
        super().__init__("Services", id="services")

    def render_snapshot(self, snapshot: ServicesSnapshot) -> None:
        # A long address (the catalog's path) folds; the rest stay put.
        table = Grid("service", "state", Column("address", wrap=True), "uptime")
        for s in snapshot.services:
            state = f"exited ({s.exit_code})" if s.exit_code is not None else s.state.value
            address = s.address.removeprefix("http://")
            table.add_row(s.name, Text(state, style=STATE_STYLES[s.state]), address, duration(s.uptime_s))
        lines: list[Text] = [Text(f"backend: {snapshot.backend}", style="dim")]
        if not snapshot.any_running:
            lines.append(Text("the stack is not running: start it with `k2tui up`", style="bold yellow"))
        self.show(*lines, table)
