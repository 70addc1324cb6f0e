"""The Iceberg pane's snapshots: from the query API when it answers, else through the lake library.

The API's process already holds the table, so asking it costs the cockpit one small HTTP call; reading
the lake itself first costs a second of imports and the catalog's load. So the lake is read directly
only while the API is not running, and the pane says which it used.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

from k2tui.lake.snapshots import SnapshotInfo
from k2tui.stack.layout import StackLayout
from k2tui.stack.local_http import local_client

if TYPE_CHECKING:
    from k2tui.lake.query import QueryEngine

LATEST = 5
API_TIMEOUT_S = 5.0


class LakeUnreachableError(Exception):
    """The API answered that it cannot read the lake; its reason is the message."""


class SnapshotReader:
    def __init__(self, layout: StackLayout) -> None:
        self.layout = layout
        self.api_url = layout.endpoints.api_url
        self.engine: QueryEngine | None = None

    async def read(self) -> tuple[str, list[SnapshotInfo], int]:
        """(where from, the newest snapshots newest first, how many the table has)."""
        try:
            async with local_client(API_TIMEOUT_S) as client:
                response = await client.get(f"{self.api_url}/v1/snapshots", params={"limit": str(LATEST)})
        except httpx.ConnectError:
            snapshots = await asyncio.to_thread(self._from_lake)
            newest = sorted(snapshots, key=lambda s: s.time, reverse=True)[:LATEST]
            return "the lake (the API is not running)", newest, len(snapshots)
        if response.status_code != 200:
            raise LakeUnreachableError(f"the API answered {response.status_code}: {_message(response)}")
        body = response.json()
        newest = [SnapshotInfo.from_json(fields) for fields in body["data"]]
        return f"the API {self.api_url.removeprefix('http://')}", newest, int(body["meta"]["total"])

    def _from_lake(self) -> list[SnapshotInfo]:
        """The lake library is imported here, in a worker thread, the first time the API is away."""
        if self.engine is None:
            from k2tui.lake.query import QueryEngine

            self.engine = QueryEngine(self.layout, refresh_seconds=0.5)
        return self.engine.snapshots()


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
