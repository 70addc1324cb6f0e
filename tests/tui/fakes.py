"""Deterministic data sources and a fixed clock for the cockpit's tests and screenshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from textual.pilot import Pilot

from k2tui.lake.snapshots import SnapshotInfo
from k2tui.lake.values import UtcTimestamp
from k2tui.stack.events import StackEvent
from k2tui.stack.supervisor import ServiceState, ServiceStatus
from k2tui.tui.app import CockpitApp
from k2tui.tui.checklist_book import ChecklistsSnapshot
from k2tui.tui.data import (
    ConsumerSnapshot,
    DlqSnapshot,
    IcebergSnapshot,
    KafkaSnapshot,
    PartitionLag,
    ServicesSnapshot,
    StackEvents,
    iceberg_summary,
)
from k2tui.tui.stream_feed import StreamsSnapshot
from tests.tui.fake_actions import FakeActions
from tests.tui.fake_desks import LETTERS, FakeBook, FakeDesk
from tests.tui.fake_streams import FakeSwitchboard, streams_snapshot

NOW = datetime(2026, 1, 13, 15, 30, 45, tzinfo=UTC)
BINANCE = "market.crypto.trades.binance"
KRAKEN = "market.crypto.trades.kraken"


def fixed_clock() -> datetime:
    return NOW


def _snapshot(n: int, added: int, total: int, current: bool) -> SnapshotInfo:
    return SnapshotInfo(
        snapshot_id=7_000_000_000_000_000_000 + n,
        parent_id=None,
        time=UtcTimestamp.from_micros(1_768_318_200_000_000 + n * 5_000_000),
        operation="append",
        added_records=added,
        added_data_files=1,
        summary={"total-records": str(total), "total-data-files": str(n)},
        current=current,
    )


@dataclass
class FakeSources:
    """Fixed snapshots; a source named in `failing` raises that error instead; `lags` advance per call."""

    failing: dict[str, Exception] = field(default_factory=dict)
    lags: list[int] = field(default_factory=lambda: [900, 600, 300])
    kafka_calls: int = 0
    engine_events: list[StackEvent] = field(default_factory=list)
    """Reported once, at the next refresh."""
    book: FakeBook = field(default_factory=FakeBook)
    desk: FakeDesk = field(default_factory=FakeDesk)
    switchboard: FakeSwitchboard = field(default_factory=FakeSwitchboard)

    def _fail(self, name: str) -> None:
        if name in self.failing:
            raise self.failing[name]

    async def services(self) -> ServicesSnapshot:
        self._fail("services")
        ready = ServiceState.READY
        return ServicesSnapshot(
            "local",
            [
                ServiceStatus("broker", "kafka", ready, "127.0.0.1:19092", pid=101, uptime_s=3723.0),
                ServiceStatus("registry", "schemas", ready, "http://127.0.0.1:18081", pid=102, uptime_s=95.0),
                ServiceStatus("object-store", "s3", ServiceState.PAUSED, "http://127.0.0.1:19000", pid=103),
                ServiceStatus("consumer", "writer", ServiceState.EXITED, "127.0.0.1:19094", exit_code=3),
            ],
        )

    async def kafka(self) -> KafkaSnapshot:
        self._fail("kafka")
        lag = self.lags[min(self.kafka_calls, len(self.lags) - 1)]
        self.kafka_calls += 1
        return KafkaSnapshot(
            "k2-iceberg-writer-crypto-v2",
            [PartitionLag(BINANCE, 0, 12_000, 12_000 - lag), PartitionLag(KRAKEN, 0, 4_321, None)],
            taken=float(self.kafka_calls),  # a second between refreshes
        )

    async def iceberg(self) -> IcebergSnapshot:
        self._fail("iceberg")
        newest = [_snapshot(n, 500, 500 * n, n == 3) for n in (3, 2, 1)]
        return iceberg_summary("the API 127.0.0.1:19098", newest, len(newest))

    async def consumer(self) -> ConsumerSnapshot:
        self._fail("consumer")
        return ConsumerSnapshot(
            source="Prometheus http://127.0.0.1:19090",
            window="last 1m",
            consumed=16_321,
            written=15_500,
            throughput=412.5,
            mean_batch=487.2,
            commit_p99_s=0.0875,
            breakers={"lake": "closed", "registry": "open"},
            dlq_count=4,
            gaps_by_symbol={"binance/BTCUSDT": 2, "kraken/ETHUSD": 1},
        )

    async def dlq(self) -> DlqSnapshot:
        self._fail("dlq")
        return DlqSnapshot(
            "/tmp/dlq", [("schema mismatch: missing field price", 3), ("not Avro", 1)], LETTERS
        )

    async def checklists(self) -> ChecklistsSnapshot:
        self._fail("checklists")
        return self.book.snapshot()

    async def streams(self) -> StreamsSnapshot:
        self._fail("streams")
        return streams_snapshot()

    async def stack_events(self) -> StackEvents:
        self._fail("events")
        events, self.engine_events = self.engine_events, []
        return StackEvents("local", events)


def fake_app(
    sources: FakeSources | None = None,
    refresh_s: float = 0.05,
    actions: FakeActions | None = None,
    theme: str = "dark",
) -> CockpitApp:
    return CockpitApp(
        sources or FakeSources(),
        clock=fixed_clock,
        refresh_s=refresh_s,
        actions=actions or FakeActions(),
        theme=theme,
    )


async def settled_frame(pilot: Pilot[None]) -> None:
    """Three refreshes, one after another, then one redraw: the same frame on every run."""
    app = pilot.app
    assert isinstance(app, CockpitApp)
    for _ in range(3):
        app.refresh_sources()
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.redraw()
    await pilot.pause()


def still_app(theme: str = "dark") -> CockpitApp:
    """The fakes with no refresh tick of their own, for pictures that must not move."""
    return fake_app(refresh_s=3600, theme=theme)
