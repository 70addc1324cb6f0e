"""The number formats the panes share."""

from __future__ import annotations


def count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
