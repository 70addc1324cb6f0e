"""The compact Rich table every pane draws its rows in, and the number formats they share."""

from __future__ import annotations

from rich.table import Table


def grid_table(*columns: str) -> Table:
    table = Table(box=None, expand=True, pad_edge=False, collapse_padding=True, header_style="bold")
    for name in columns:
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    return table


def count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
