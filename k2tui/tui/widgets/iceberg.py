"""Iceberg pane: the table's totals and its latest snapshots."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from k2tui.tui.data import IcebergSnapshot
from k2tui.tui.widgets.pane import Pane
from k2tui.tui.widgets.tables import count, grid_table


class IcebergPane(Pane):
    def __init__(self) -> None:
        super().__init__("Iceberg", id="iceberg")

    def render_snapshot(self, snapshot: IcebergSnapshot) -> None:
        totals = Text.assemble(
            (snapshot.table, "bold"),
            f"\nrecords {count(snapshot.records)} · data files {count(snapshot.data_files)}",
            f" · snapshots {count(snapshot.snapshot_count)}",
        )
        table = grid_table("snapshot", "time UTC", "operation", "+records", "+files")
        for s in snapshot.latest:
            table.add_row(
                str(s.snapshot_id),
                s.time.strftime("%H:%M:%S"),
                s.operation or "—",
                count(s.added_records),
                count(s.added_data_files),
            )
        self.show(Group(totals, table))
