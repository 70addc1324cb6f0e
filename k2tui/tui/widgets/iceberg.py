"""Iceberg pane: the table's totals and its latest snapshots, and whether the API or the lake said so."""

from __future__ import annotations

from rich.text import Text

from k2tui.tui.data import IcebergSnapshot
from k2tui.tui.widgets.body import Grid
from k2tui.tui.widgets.pane import Pane
from k2tui.tui.widgets.tables import count


class IcebergPane(Pane):
    def __init__(self) -> None:
        super().__init__("Iceberg", id="iceberg")

    def render_snapshot(self, snapshot: IcebergSnapshot) -> None:
        totals = Text.assemble(
            (f"from {snapshot.source}\n", "dim"),
            (snapshot.table, "bold"),
            f"\nrecords {count(snapshot.records)} · data files {count(snapshot.data_files)}",
            f" · snapshots {count(snapshot.snapshot_count)}",
        )
        table = Grid("snapshot", "time UTC", "operation", "+records", "+files")
        for s in snapshot.latest:
            table.add_row(
                str(s.snapshot_id),
                s.time.strftime("%H:%M:%S"),
                s.operation or "—",
                count(s.added_records),
                count(s.added_data_files),
            )
        self.show(totals, table)
