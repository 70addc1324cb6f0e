"""One snapshot of the trades table as the query engine, the API and the cockpit describe it.

Apart from the engine so that whoever only reads snapshots from the API (the cockpit) need not import
the lake library to hold one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k2tui.lake.values import UtcTimestamp


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: int
    parent_id: int | None
    time: UtcTimestamp
    operation: str | None
    added_records: int | None
    added_data_files: int | None
    summary: dict[str, str]
    current: bool

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> SnapshotInfo:
        """The inverse of the API's serialisation (`time_us` is the exact time)."""
        return cls(
            snapshot_id=int(fields["snapshot_id"]),
            parent_id=None if fields.get("parent_id") is None else int(fields["parent_id"]),
            time=UtcTimestamp.from_micros(int(fields["time_us"])),
            operation=fields.get("operation"),
            added_records=fields.get("added_records"),
            added_data_files=fields.get("added_data_files"),
            summary={str(k): str(v) for k, v in (fields.get("summary") or {}).items()},
            current=bool(fields.get("current")),
        )
